// What `npm start` says when it cannot start, run as a user runs it (platform/local/main.ts as a real
// process): bad flags exit 2 with the usage, a data dir another npm start holds, a taken port, a min-scale
// above the Knative Service's max-scale and a machine where the sandbox cannot be made exit 1 naming what
// is wrong and what to do. None of them leaves a state file behind or starts a cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findSystemTool } from '../../tools/find.js';
import { mainScript, repoRoot, startRunner } from './support.js';

async function run(args: string[], dataDir?: string) {
  const runner = startRunner([...args, ...(dataDir ? ['--data-dir', dataDir] : [])]);
  const exit = await runner.exited;
  return { ...exit, output: runner.output() };
}

test('bad flags exit 2 with the usage or the rule they break', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--nope'], /Unknown option '--nope'[\s\S]*Usage: npm start -- \[options\]/],
    [['extra'], /Unexpected argument 'extra'[\s\S]*Usage: npm start/],
    [['--ping-every', '7s'], /--ping-every 7s: a cron schedule fires exactly every 7s only if it divides a minute: use 1s, 2s/],
    [['--ping-every', 'often'], /--ping-every "often" must be like 10s, 2m or 1h/],
    [['--simulation-instances', '0'], /--simulation-instances must be a whole number from 1 to 100, got "0"/],
    [['--port-base', '80'], /--port-base must be a whole number from 1024 to 65000, got "80"/],
  ];
  for (const [args, expected] of cases) {
    await t.test(args.join(' '), async () => {
      const result = await run(args);
      assert.equal(result.code, 2, result.output);
      assert.match(result.output, expected);
    });
  }
  await t.test('--help prints the usage and exits 0', async () => {
    const result = await run(['--help']);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^Usage: npm start -- \[options\]$/m);
    assert.match(result.output, /--ping-every DURATION/);
  });
});

test('a data dir held by a live npm start is refused, naming its pid', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-main-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  // This test's own process stands for the live npm start holding it.
  await writeFile(path.join(dataDir, 'local.json'), JSON.stringify({ pid: process.pid, state: 'ready' }));
  const result = await run([], dataDir);
  assert.equal(result.code, 1, result.output);
  assert.match(
    result.output,
    new RegExp(`cannot start: another npm start \\(pid ${process.pid}\\) is using ${dataDir}: stop it first, or give this one another --data-dir`),
  );
  assert.ok(existsSync(path.join(dataDir, 'local.json')), "the holder's state file is left alone");
});

test('a taken port is named with what it is for and the flag that moves it; the data dir is released', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-main-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const port = (squatter.address() as AddressInfo).port;
  // The squatter holds the third port of the range: Prometheus's forward.
  const result = await run(['--port-base', String(port - 2)], dataDir);
  assert.equal(result.code, 1, result.output);
  assert.match(
    result.output,
    new RegExp(
      `cannot start: port ${port} \\(Prometheus's API\\) is already in use on 127\\.0\\.0\\.1: stop what listens there, or pick other ports with --port-base`,
    ),
  );
  assert.equal(existsSync(path.join(dataDir, 'local.json')), false, 'the state file is removed: the next start may take the data dir');
});

test("--simulation-instances above the simulation's max-scale is refused before any cluster starts", async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-main-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const result = await run(['--simulation-instances', '11'], dataDir);
  assert.equal(result.code, 1, result.output);
  assert.match(result.output, /cannot start: --simulation-instances 11 is above the simulation's autoscaling\.knative\.dev\/max-scale \(10\)/);
  assert.doesNotMatch(result.output, /cluster:/, 'no cluster was started');
});

test('where the sandbox cannot be made (root without CAP_SYS_ADMIN, as in an unprivileged container), the message names the fix', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root, to drop CAP_SYS_ADMIN and CAP_NET_ADMIN from it');
    return;
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-main-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  // Root as an unprivileged container runs it: the capabilities to make namespaces are gone from the bounding set.
  const setpriv = findSystemTool('setpriv');
  const { spawn } = await import('node:child_process');
  const child = spawn(
    setpriv,
    ['--bounding-set=-sys_admin,-net_admin', '--inh-caps=-sys_admin,-net_admin', '--', process.execPath, '--import', 'tsx', mainScript, '--data-dir', dataDir],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 1, output);
  assert.match(output, /cannot start: .*unshare failed as root .*lacks CAP_SYS_ADMIN or CAP_NET_ADMIN/);
  assert.match(output, /run on a VM or a machine of your own, or in a container started with --privileged/);
  assert.equal(existsSync(path.join(dataDir, 'local.json')), false);
});

test('a pinned tool missing from the cache stops start-up with the command that installs it, no stack trace', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-main-'));
  const emptyCache = await mkdtemp(path.join(os.tmpdir(), 'promsnap-nocache-'));
  t.after(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(emptyCache, { recursive: true, force: true })]));
  const runner = startRunner(['--data-dir', dataDir], { ...process.env, PROMSNAP_CACHE: emptyCache });
  const exit = await runner.exited;
  assert.equal(exit.code, 1, runner.output());
  assert.match(
    runner.output(),
    /cannot start: etcd \S+ \(\S+\) is not installed \(not found on PATH\)\. Install it with:\n\s+bash platform\/tools\/provision\.sh etcd/,
  );
  assert.doesNotMatch(runner.output(), /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(path.join(dataDir, 'local.json')), false);
});

test('a data dir left by an npm start that was killed (its pid gone) is taken over', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-main-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const gone = startRunner(['--help']);
  await gone.exited;
  await writeFile(path.join(dataDir, 'local.json'), JSON.stringify({ pid: gone.child.pid, state: 'ready' }));
  // A taken port stops the start-up that got past the data dir.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const port = (squatter.address() as AddressInfo).port;
  const result = await run(['--port-base', String(port)], dataDir);
  assert.equal(result.code, 1, result.output);
  assert.match(result.output, new RegExp(`port ${port} \\(Kubernetes API server\\) is already in use`), 'got past the data dir to the ports');
  assert.equal(existsSync(path.join(dataDir, 'local.json')), false, 'and removed its own state file when it gave up');
});
