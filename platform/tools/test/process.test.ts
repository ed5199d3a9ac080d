import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive, startProcess, terminate } from '../process.js';
import { hostLinks, sandboxLeftovers, sandboxSupport, type SandboxTraces } from '../sandbox.js';
import { waitFor } from '../wait.js';

const fixture = fileURLToPath(new URL('./fixtures/interrupted.ts', import.meta.url));
const sandboxFixture = fileURLToPath(new URL('./fixtures/interrupted-sandbox.ts', import.meta.url));
const idle = ['-e', 'setInterval(() => {}, 1000)'];

/** Process group ids of every live process on the machine (from /proc, as ps reads them; zombies are dead). */
function liveGroups(): Set<number> {
  const groups = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 5 of /proc/PID/stat is the process group; the command name before it may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') groups.add(Number(fields[2]));
    } catch {
      // exited while we looked
    }
  }
  return groups;
}

test('a process that is ready is handed back; one that exits first is reported with its output', async (t) => {
  const ok = await startProcess({ name: 'ready', command: process.execPath, args: idle, readyCheck: { what: 'at once', check: () => true } });
  t.after(() => ok.stop('SIGKILL', 1_000));
  assert.equal(ok.alive, true);

  await assert.rejects(
    startProcess({
      name: 'dies',
      command: process.execPath,
      args: ['-e', 'console.error("no config file"); process.exit(3)'],
      readyCheck: { what: 'never', check: () => false },
      readyTimeoutMs: 30_000,
    }),
    (err: Error) => /^dies exited \(3\) before it was ready:\nno config file/.test(err.message),
  );
});

test('waiting on a process ends the moment it dies, not at the deadline', async () => {
  const child = await startProcess({ name: 'short-lived', command: process.execPath, args: ['-e', 'setTimeout(() => process.exit(7), 300)'] });
  const started = Date.now();
  await assert.rejects(
    child.waitUntil(() => false, { what: 'something that never holds', timeoutMs: 60_000 }),
    /short-lived exited \(7\) before it was ready/,
  );
  assert.ok(Date.now() - started < 10_000, `the wait ended ${Date.now() - started} ms after start`);
});

test('stop escalates to SIGKILL after the grace, and takes the whole process group', async () => {
  // Ignores SIGTERM, and leaves a grandchild in its group.
  const script = `
    require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    process.on('SIGTERM', () => {});
    console.log('up');
    setInterval(() => {}, 1000);`;
  let up = false;
  const child = await startProcess({ name: 'stubborn', command: process.execPath, args: ['-e', script], onLine: (line) => (up ||= line === 'up') });
  await waitFor(() => up, { what: 'the child to start its grandchild' });
  assert.ok(liveGroups().has(child.pid));
  const started = Date.now();
  const code = await child.stopWith(terminate(500));
  assert.equal(code, 'SIGKILL');
  assert.ok(Date.now() - started >= 450, 'SIGTERM was given its grace first');
  await waitFor(() => !liveGroups().has(child.pid), { what: 'the grandchild to be gone too', timeoutMs: 5_000 });
});

test('a process that stops on SIGTERM is not killed', async () => {
  const child = await startProcess({ name: 'polite', command: process.execPath, args: idle });
  assert.equal(await child.stop('SIGTERM', 10_000), 'SIGTERM');
  assert.equal(isAlive(child.pid), false);
});

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _context, ...rest } = env;
  return rest;
}

/**
 * The interrupted runs: each fixture is started in a session of its own (as a terminal would start
 * `npm test`), signalled as an interrupt arrives, and the process groups it started are counted after.
 */
const interruptions = [
  { name: 'a script, Ctrl-C (SIGINT to its whole process group)', asTest: false, signal: 'SIGINT', group: true },
  { name: 'a script, SIGTERM to it alone', asTest: false, signal: 'SIGTERM', group: false },
  { name: 'a script, SIGHUP to it alone (the terminal closed)', asTest: false, signal: 'SIGHUP', group: false },
  { name: 'a test file under node --test, Ctrl-C', asTest: true, signal: 'SIGINT', group: true },
  { name: 'a test file under node --test, SIGTERM to the runner alone (a CI time-out)', asTest: true, signal: 'SIGTERM', group: false },
] as const;

test('an interrupted run leaves no process behind', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-interrupt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await Promise.all(
    interruptions.map((c, index) =>
      t.test(c.name, async () => {
        const groupsFile = path.join(dir, `groups-${index}.json`);
        const runner = spawn(process.execPath, ['--import', 'tsx', ...(c.asTest ? ['--test', '--test-reporter=dot'] : []), fixture], {
          detached: true,
          stdio: 'ignore',
          // Without NODE_TEST_CONTEXT: inherited from this test process, it would make the runner a child reporter.
          env: { ...withoutTestContext(process.env), FIXTURE_GROUPS_FILE: groupsFile, FIXTURE_AS_TEST: c.asTest ? '1' : '0' },
        });
        const exited = new Promise<void>((resolve) => runner.once('exit', () => resolve()));
        let groups: number[] = [];
        try {
          groups = await waitFor(async () => existsSync(groupsFile) && (JSON.parse(await readFile(groupsFile, 'utf8')) as number[]), {
            what: 'the fixture to start its processes',
            timeoutMs: 30_000,
          });
          assert.deepEqual(
            groups.filter((g) => !liveGroups().has(g)),
            [],
            'every process was running before the interrupt',
          );
          process.kill(c.group ? -runner.pid! : runner.pid!, c.signal);
          await waitFor(() => runner.exitCode !== null || runner.signalCode !== null, { what: 'the interrupted run to exit', timeoutMs: 20_000 });
          // A test file outlives the runner that signalled it by the few seconds its cleanup takes (its
          // stop policy gives a process 3 s before SIGKILL): counted after that.
          const leftover = () => groups.filter((g) => liveGroups().has(g));
          await waitFor(() => leftover().length === 0, { what: 'the processes to be stopped', timeoutMs: 10_000 }).catch(() => undefined);
          const left = leftover();
          assert.deepEqual(left, [], `process groups left running after ${c.signal}`);
        } finally {
          for (const g of [runner.pid!, ...groups]) {
            try {
              process.kill(-g, 'SIGKILL');
            } catch {
              // gone, as it should be
            }
          }
          await exited;
        }
      }),
    ),
  );
});

/**
 * The same with a sandbox (tools/sandbox.ts) holding what a local cluster puts there: after the
 * interrupt, nothing is in its namespaces any more, no mount of it or under its state dir is left,
 * the state dir is gone, and the host's network interfaces are as they were.
 */
const sandboxInterruptions = [
  { name: 'a script with a sandbox, Ctrl-C', asTest: false, signal: 'SIGINT', group: true },
  { name: 'a script with a sandbox, SIGKILL to it alone (killed outright: no hook runs)', asTest: false, signal: 'SIGKILL', group: false },
  { name: 'a test file with a sandbox under node --test, SIGTERM to the runner alone', asTest: true, signal: 'SIGTERM', group: false },
] as const;

test('an interrupted run leaves no sandbox behind: no process, veth, mount or state dir', async (t) => {
  const support = await sandboxSupport();
  if (!support.available) assert.fail(`${support.reason}\n  ${support.fix}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-interrupt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const linksBefore = await hostLinks();
  await Promise.all(
    sandboxInterruptions.map((c, index) =>
      t.test(c.name, async () => {
        const tracesFile = path.join(dir, `traces-${index}.json`);
        const runner = spawn(process.execPath, ['--import', 'tsx', ...(c.asTest ? ['--test', '--test-reporter=dot'] : []), sandboxFixture], {
          detached: true,
          stdio: 'ignore',
          env: {
            ...withoutTestContext(process.env),
            FIXTURE_SANDBOX_DIR: path.join(dir, `sandbox-${index}`),
            FIXTURE_TRACES_FILE: tracesFile,
            FIXTURE_AS_TEST: c.asTest ? '1' : '0',
          },
        });
        const exited = new Promise<void>((resolve) => runner.once('exit', () => resolve()));
        let traces: SandboxTraces | undefined;
        try {
          const written = await waitFor(
            async () => existsSync(tracesFile) && (JSON.parse(await readFile(tracesFile, 'utf8')) as { traces: SandboxTraces; forwardUrl: string }),
            { what: 'the fixture to make its sandbox', timeoutMs: 60_000 },
          );
          traces = written.traces;
          assert.equal(await (await fetch(written.forwardUrl)).text(), 'up', 'the server inside answered through the forward');
          const before = sandboxLeftovers(traces);
          assert.ok(before.processes.length >= 4, `processes in the sandbox before the interrupt: ${before.processes.join(', ')}`);
          assert.equal(before.dir, true);

          process.kill(c.group ? -runner.pid! : runner.pid!, c.signal);
          await waitFor(() => runner.exitCode !== null || runner.signalCode !== null, { what: 'the interrupted run to exit', timeoutMs: 20_000 });
          const clean = () => {
            const left = sandboxLeftovers(traces!);
            return left.processes.length === 0 && left.mounts.length === 0 && !left.dir;
          };
          // The test file's own cleanup (3 s for SIGTERM) and the reaper's, after the runner exits.
          await waitFor(clean, { what: 'the sandbox to be gone', timeoutMs: 20_000 }).catch(() => undefined);
          assert.deepEqual(sandboxLeftovers(traces), { processes: [], mounts: [], dir: false }, `left after ${c.signal}`);
        } finally {
          try {
            process.kill(-runner.pid!, 'SIGKILL');
          } catch {
            // gone, as it should be
          }
          await exited;
        }
      }),
    ),
  );
  const linksAfter = await hostLinks();
  assert.deepEqual(
    linksAfter.filter((l) => !linksBefore.some((b) => b.name === l.name)),
    [],
    "no network interface was left in (or ever made in) the host's namespace",
  );
});
