import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../platform/tools/ports.js';
import { ConfigError } from '../src/env.js';
import { functionLogger, readConfig } from '../src/contract.js';

const fixture = fileURLToPath(new URL('./fixtures/function.ts', import.meta.url));
const defaults = { shutdownGraceMs: 25_000, maxShutdownGraceMs: 600_000 };

test("the common settings: defaults, Knative names, and their problems around the function's own", () => {
  assert.deepEqual(
    readConfig({}, defaults, () => ({ own: 1 })),
    { own: 1, port: 8080, logLevel: 'info', shutdownGraceMs: 25_000, service: undefined, revision: undefined },
  );
  assert.deepEqual(
    readConfig({ PORT: '9000', LOG_LEVEL: 'debug', SHUTDOWN_GRACE_MS: '1000', K_SERVICE: 'snapshot', K_REVISION: 'snapshot-00002' }, defaults, () => ({})),
    { port: 9000, logLevel: 'debug', shutdownGraceMs: 1000, service: 'snapshot', revision: 'snapshot-00002' },
  );
  assert.throws(
    () =>
      readConfig(
        { PORT: '0', OWN: 'x', LOG_LEVEL: 'loud', SHUTDOWN_GRACE_MS: '600001' },
        defaults,
        (read) => ({ own: read.integer('OWN', 1) }),
        (config, read) => read.problem(`CHECK sees grace ${config.shutdownGraceMs}`),
      ),
    (err: unknown) => err instanceof ConfigError && err.problems.map((p) => /^[A-Z_]+/.exec(p)?.[0]).join(' ') === 'PORT OWN LOG_LEVEL SHUTDOWN_GRACE_MS CHECK',
  );
});

test("every log line names the function, and Knative's Service and Revision when set", () => {
  const lines: string[] = [];
  functionLogger('snapshot', { logLevel: 'info', service: 'snapshot', revision: 'snapshot-00001' }, (l) => lines.push(l)).info('hi');
  functionLogger('snapshot', { logLevel: 'info', service: undefined, revision: undefined }, (l) => lines.push(l)).info('hi');
  const [knative, plain] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual([knative!['service'], knative!['kService'], knative!['kRevision']], ['snapshot', 'snapshot', 'snapshot-00001']);
  assert.equal('kService' in plain!, false);
});

function startFixture(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

test('a bad configuration stops the start: exit code 1, one line per problem on stderr, nothing served', async () => {
  const run = startFixture({ PORT: 'eighty', FIXTURE_GREETING: 'yo' });
  assert.equal(await run.exited, 1);
  assert.equal(run.stdout(), '');
  assert.match(
    run.stderr(),
    /^fixture: invalid configuration:\n {2}- PORT="eighty" must be a whole number from 1 to 65535\n {2}- FIXTURE_GREETING="yo" must be one of hello, hi\n$/,
  );
});

test('a function serves, says it is ready, and on SIGTERM finishes its in-flight request before exiting 0', async (t) => {
  const port = await freePort();
  const run = startFixture({ PORT: String(port), FIXTURE_GREETING: 'hi', K_SERVICE: 'fixture', K_REVISION: 'fixture-00001' });
  t.after(() => run.child.kill('SIGKILL'));
  const deadline = Date.now() + 30_000;
  while (!run.stdout().includes('"msg":"fixture ready"')) {
    assert.ok(Date.now() < deadline, `not ready: ${run.stdout()}${run.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ready = run
    .stdout()
    .split('\n')
    .map((l) => (l ? (JSON.parse(l) as Record<string, unknown>) : {}))
    .find((r) => r['msg'] === 'fixture ready')!;
  assert.deepEqual([ready['service'], ready['kService'], ready['kRevision'], ready['greeting']], ['fixture', 'fixture', 'fixture-00001', 'hi']);
  const slow = fetch(`http://127.0.0.1:${port}/slow`).then((r) => r.text());
  await new Promise((resolve) => setTimeout(resolve, 100));
  run.child.kill('SIGTERM');
  assert.equal(await slow, 'hi');
  assert.equal(await run.exited, 0);
  assert.match(run.stdout(), /"msg":"shutting down","service":"fixture".*"reason":"SIGTERM"/);
});
