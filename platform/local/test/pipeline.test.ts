// `npm start` end to end: the runner as a real process with a fast schedule; requests to the
// simulation (direct, and `npm run load`); within a bounded time a snapshot in MinIO (read with mc) holding the simulation's
// request counter with its own app label and the labels the manifests' relabel rules add; then
// Ctrl-C stops everything: exit 0, no process of its tree left, no partial upload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../../tools/command.js';
import { mcClient } from '../../tools/minio.js';
import { waitFor } from '../../tools/wait.js';
import { alive, commandOf, descendants, repoRoot, startRunner } from './support.js';

// The platform exports ranges (SNAPSHOT_RANGE, which --ping-every sets to its period): every raw
// sample of each period, so a counter's newest value is its last sample.
interface Series {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}
interface Snapshot {
  kind: string;
  time: string;
  range: string;
  results: Array<{ query: string; response: { status: string; data: { result: Series[] } }; series: number }>;
}

test('npm start: requests to the simulation show up in a snapshot in MinIO, and Ctrl-C leaves nothing behind', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-local-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const started = Date.now();
  const runner = startRunner(['--ping-every', '2s', '--data-dir', dataDir]);
  t.after(() => {
    // Only reached with the runner still up when an assertion failed before the Ctrl-C below.
    if (runner.child.exitCode === null) runner.child.kill('SIGKILL');
  });

  await runner.waitForLine(/^ready in /, 120_000);
  const startupMs = Date.now() - started;
  const simulationUrl = (await runner.waitForLine(/^Simulation\s+(http:\/\/\S+)/, 1_000))[1]!;
  const [, endpoint, user, password] = await runner.waitForLine(/^MinIO client\s+mc alias set promsnap (\S+) (\S+) (\S+)$/, 1_000);
  t.diagnostic(`runner ready in ${startupMs} ms`);

  // Traffic the snapshot must show: 25 simulated requests (and one 404, which must not count as 200).
  const direct = 25;
  for (let i = 0; i < direct; i++) {
    const res = await fetch(`${simulationUrl}/simulate-requests`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  await (await fetch(`${simulationUrl}/no-such-route`)).body?.cancel();
  // And `npm run load` for two seconds, finding the simulation through the runner's state file.
  const load = await runCommand(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'platform/local/load.ts'), '--data-dir', dataDir, '-z', '2s', '-c', '2'],
    {
      cwd: repoRoot,
    },
  );
  const loaded = /^(\d+) responses, .* by status: 200: (\d+)$/m.exec(load.stdout);
  assert.ok(loaded, `npm run load printed:\n${load.stdout}${load.stderr}`);
  assert.match(load.stdout, new RegExp(`^hey -z 2s against ${simulationUrl}/simulate-requests \\(2 workers\\)$`, 'm'));
  const requests = direct + Number(loaded[2]);
  const requestsDoneAt = Date.now();

  const mc = mcClient(endpoint!, { accessKeyId: user!, secretAccessKey: password! }, path.join(dataDir, 'test-mc'));
  const seen = new Set<string>();
  const found = await waitFor(
    async () => {
      const listing = await mc('ls', '--recursive', '--json', 'local/snapshots');
      const keys = listing
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { key: string }).key)
        .filter((key) => !key.startsWith('dead-letters/') && !seen.has(key));
      for (const key of keys) {
        seen.add(key);
        const snapshot = JSON.parse(await mc('cat', `local/snapshots/${key}`)) as Snapshot;
        const series = snapshot.results.flatMap((r) => r.response.data.result);
        const counted = series.filter(
          (s) => s.metric['__name__'] === 'simulation_app_requests_total' && s.metric['route'] === '/simulate-requests' && s.metric['statusCode'] === '200',
        );
        const total = counted.reduce((sum, s) => sum + Number(s.values.at(-1)?.[1] ?? 0), 0);
        if (total >= requests) return { key, snapshot, counted };
      }
      return undefined;
    },
    { what: `a snapshot counting ${requests} GET /simulate-requests`, timeoutMs: 90_000, intervalMs: 1_000 },
  );
  t.diagnostic(`first snapshot with the requests ${Date.now() - requestsDoneAt} ms after them: ${found.key}`);

  const [series] = found.counted;
  assert.equal(found.snapshot.kind, 'promsnap.range.v1');
  assert.equal(found.snapshot.range, '2s', 'the range follows --ping-every');
  assert.equal(series!.metric['app'], 'simulation', "the application's own default label");
  assert.equal(series!.metric['job'], 'kubernetes-pods', "scraped by the manifests' kubernetes-pods job");
  assert.equal(series!.metric['kubernetes_namespace'], 'promsnap', "added by the manifests' relabel rules");
  assert.match(series!.metric['kubernetes_pod_name'] ?? '', /^simulation-00001-deployment-[a-z2-9]+-[a-z2-9]{5}$/, 'the pod name Knative would give it');
  assert.equal(series!.metric['serving_knative_dev_service'], 'simulation', 'pod labels copied by labelmap');
  assert.equal(series!.metric['exported_app'], undefined, "Knative's app=<revision> pod label is dropped, not clashing");
  assert.match(
    runner.output(),
    /^snapshot stored {2}snapshots\/ranges\/promsnap\/snapshot-schedule\/2s\/\d{4}\/\d{2}\/\d{2}\/\d{6}Z\.json {2}\d+ bytes {2}\d+ series {2}\d+ samples from \d\d:\d\d:\d\d to \d\d:\d\d:\d\d/m,
    'one line per stored export',
  );

  // The whole tree, as it is now: every process the runner started and anything they started.
  const tree = descendants(runner.child.pid!);
  assert.ok(tree.length >= 4, `expected MinIO, Prometheus, simulation and snapshot processes, found ${tree.map((p) => commandOf(p.pid)).join('; ')}`);

  runner.child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([runner.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 60_000)))]);
  clearTimeout(timer);
  assert.notEqual(exit, 'timeout', `runner still running 60 s after SIGINT:\n${runner.output()}`);
  assert.deepEqual(exit, { code: 0, signal: null }, runner.output());
  assert.match(runner.output(), /^stopped$/m);
  const left = tree.filter(alive);
  assert.deepEqual(
    left.map((p) => `${p.pid} ${commandOf(p.pid)}`),
    [],
    "no process of the runner's tree is left",
  );

  // Nothing half-written: every stored snapshot parses, and no multipart upload is left pending.
  const { startMinio } = await import('../../tools/minio.js');
  const user2 = { accessKeyId: user!, secretAccessKey: password! };
  const minio = await startMinio({ dataDir: path.join(dataDir, 'minio'), credentials: user2 });
  t.after(() => minio.stop());
  const keys = (await minio.mc('ls', '--recursive', '--json', 'local/snapshots'))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { key: string }).key);
  for (const key of keys.filter((k) => !k.startsWith('dead-letters/'))) {
    const text = await minio.mc('cat', `local/snapshots/${key}`);
    assert.doesNotThrow(() => JSON.parse(text), `${key} is complete JSON`);
  }
  assert.equal((await minio.mc('ls', '--recursive', '--incomplete', 'local/snapshots')).trim(), '', 'no pending multipart upload');
});

test('a runner killed outright (SIGKILL) leaves its processes; the next start on that data dir stops them', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-local-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const first = startRunner(['--data-dir', dataDir]);
  t.after(() => {
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
  });
  await first.waitForLine(/^ready in /, 120_000);
  const tree = descendants(first.child.pid!);
  assert.ok(tree.length >= 4, tree.map((p) => commandOf(p.pid)).join('; '));
  first.child.kill('SIGKILL');
  await first.exited;
  // Each child leads its own process group, so the kill did not reach them: they are orphans now.
  assert.ok(tree.some(alive), 'the children outlive a SIGKILLed runner');
  t.after(() => {
    for (const p of tree.filter(alive)) process.kill(-p.pid, 'SIGKILL');
  });

  // The next runner on the same data dir, stopped right after by a taken --port-base.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const second = startRunner(['--data-dir', dataDir, '--port-base', String((squatter.address() as AddressInfo).port)]);
  assert.equal((await second.exited).code, 1, second.output());
  assert.match(second.output(), new RegExp(`stopping .*minio \\(pid \\d+\\).*, left running by a runner that was killed \\(pid ${first.child.pid}\\)`));
  assert.deepEqual(
    tree.filter(alive).map((p) => `${p.pid} ${commandOf(p.pid)}`),
    [],
    'every orphan was stopped',
  );
});
