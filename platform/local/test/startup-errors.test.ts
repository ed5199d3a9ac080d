// `npm start` refusing to start, as a real process: a missing tool names the command that installs
// it; a port already taken is named with what needed it; neither leaves anything running or a stack
// trace on the screen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { alive, descendants, startRunner, type ProcessId } from './support.js';

async function tempDir(t: { after(fn: () => unknown): void }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-start-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** PATH without every folder that holds `tool`. */
function pathWithout(tool: string): string {
  return (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .filter((dir) => {
      try {
        accessSync(path.join(dir, tool), constants.X_OK);
        return false;
      } catch {
        return true;
      }
    })
    .join(path.delimiter);
}

test('without prometheus on PATH, start-up stops at once with the command that installs it', async (t) => {
  const dataDir = await tempDir(t);
  const runner = startRunner(['--data-dir', dataDir], { ...process.env, PATH: pathWithout('prometheus') });
  const exit = await runner.exited;
  assert.equal(exit.code, 1, runner.output());
  assert.match(runner.output(), /prometheus is not installed \(not found on PATH\)\. Install it with:\n\s+bash platform\/tools\/provision\.sh prometheus/);
  assert.doesNotMatch(runner.output(), /minio is not installed|mc is not installed/, 'only what is missing is named');
  assert.doesNotMatch(runner.output(), /\n\s+at /, 'no stack trace');
  assert.deepEqual(await readdir(dataDir), [], 'nothing was started or written');
});

test('a port already taken is reported with what needed it, and nothing is left running', async (t) => {
  const dataDir = await tempDir(t);
  // Someone else's server on the port MinIO's API would get from --port-base.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const port = (squatter.address() as AddressInfo).port;

  const runner = startRunner(['--data-dir', dataDir, '--port-base', String(port)]);
  const seen = new Map<string, ProcessId>();
  // While it runs, note every process it starts (kubectl to render, at least): none may survive it.
  const poll = setInterval(() => {
    if (runner.child.pid) for (const p of descendants(runner.child.pid)) seen.set(`${p.pid}/${p.startTime}`, p);
  }, 20);
  t.after(() => clearInterval(poll));
  const exit = await runner.exited;
  clearInterval(poll);
  assert.equal(exit.code, 1, runner.output());
  assert.match(
    runner.output(),
    new RegExp(
      `port ${port} \\(minio's api port, 9000 in the manifest\\) is already in use on 127\\.0\\.0\\.1: stop what listens there, or pick other ports with --port-base`,
    ),
  );
  assert.doesNotMatch(runner.output(), /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(runner.output(), /ready in \d/, 'nothing reported ready');
  assert.deepEqual([...seen.values()].filter(alive), []);
});

test('a bad flag is a usage error (exit 2) naming it', async () => {
  const runner = startRunner(['--ping-every', 'often']);
  const exit = await runner.exited;
  assert.equal(exit.code, 2);
  assert.match(runner.output(), /--ping-every "often" must be like 10s, 2m or 1h/);
  const unknown = startRunner(['--pingevery', '10s']);
  assert.equal((await unknown.exited).code, 2);
  assert.match(unknown.output(), /Unknown option '--pingevery'[\s\S]*Usage: npm start/);
});

test('a data dir in use by a running runner is refused; one left by a killed runner is taken over', async (t) => {
  const dataDir = await tempDir(t);
  const stateFile = path.join(dataDir, 'runner.json');
  // A taken --port-base makes any start-up that gets past the data dir stop at once (and say so).
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const port = String((squatter.address() as AddressInfo).port);

  // A live process holds the data dir: this test process stands in for the other runner.
  await writeFile(stateFile, JSON.stringify({ pid: process.pid, state: 'starting' }));
  const second = startRunner(['--data-dir', dataDir, '--port-base', port]);
  assert.equal((await second.exited).code, 1, second.output());
  const escaped = dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(
    second.output(),
    new RegExp(`another npm start \\(pid ${process.pid}\\) is using ${escaped}: stop it first, or give this one another --data-dir`),
  );
  assert.equal((JSON.parse(await readFile(stateFile, 'utf8')) as { pid: number }).pid, process.pid, "the holder's file is left alone");

  // A runner that was killed left its file behind: its pid is gone, so the data dir is free again.
  const gone = startRunner(['--help']);
  await gone.exited;
  await writeFile(stateFile, JSON.stringify({ pid: gone.child.pid, state: 'starting' }));
  const next = startRunner(['--data-dir', dataDir, '--port-base', port]);
  assert.equal((await next.exited).code, 1);
  assert.match(next.output(), new RegExp(`port ${port} .* is already in use`), 'got past the data dir to the ports');
  await assert.rejects(readFile(stateFile), { code: 'ENOENT' }, 'and removed its own state file when it gave up');
});
