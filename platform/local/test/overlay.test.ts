// The overlay npm start applies, rendered by the real `kubectl kustomize` on top of the real platform/:
// the schedule --ping-every writes, the snapshot range that follows it, the simulation's min-scale, the
// local image names and Prometheus's TSDB on a claim; and the pure rules behind them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findObject, knativeService, parseObjects, type KubeObject } from '../../manifests/index.js';
import { kustomize } from '../../tools/kubectl.js';
import { everyMs, everyToCron, followPingEvery, localImage, writeOverlay, type EnvChange } from '../overlay.js';
import { repoRoot } from './support.js';

const platformDir = path.join(repoRoot, 'platform');
const schedule = (objects: KubeObject[]) =>
  (findObject(objects, 'PingSource.sources.knative.dev', 'snapshot-schedule', 'promsnap') as unknown as { spec: { schedule: string } }).spec.schedule;

test('--ping-every becomes a cron schedule that fires exactly that often, or is refused naming the exact ones', () => {
  assert.equal(everyToCron('10s'), '*/10 * * * * *');
  assert.equal(everyToCron('1s'), '* * * * * *');
  assert.equal(everyToCron('2m'), '0 */2 * * * *');
  assert.equal(everyToCron('1h'), '0 0 * * * *');
  assert.equal(everyToCron('6h'), '0 0 */6 * * *');
  assert.throws(() => everyToCron('7s'), /divides a minute: use 1s, 2s, 3s, 4s, 5s, 6s, 10s, 12s, 15s, 20s, 30s, or whole minutes/);
  assert.throws(() => everyToCron('60s'), /divides a minute/);
  assert.throws(() => everyToCron('5h'), /divides a day: use 1h, 2h, 3h, 4h, 6h, 8h, 12h$/);
  for (const bad of ['0s', '10', 'ten seconds', '1d', '-5s', '']) assert.throws(() => everyToCron(bad), /must be like 10s, 2m or 1h/, bad);
  assert.equal(everyMs('10s'), 10_000);
  assert.equal(everyMs('2m'), 120_000);
});

test('with --ping-every, a range export follows the period and settles within one', () => {
  assert.deepEqual(
    followPingEvery({ SNAPSHOT_RANGE: '5m', A: 'b' }, 10_000),
    { SNAPSHOT_RANGE: '10s', SNAPSHOT_SETTLE: '10s' },
    "the function's 15 s settle capped at the period",
  );
  assert.deepEqual(
    followPingEvery({ SNAPSHOT_RANGE: '5m' }, 120_000),
    { SNAPSHOT_RANGE: '2m', SNAPSHOT_SETTLE: '15s' },
    "the function's default settle when it fits",
  );
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m', SNAPSHOT_SETTLE: '30s' }, 120_000), { SNAPSHOT_RANGE: '2m', SNAPSHOT_SETTLE: '30s' });
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m', SNAPSHOT_SETTLE: '15s' }, 2_000), { SNAPSHOT_RANGE: '2s', SNAPSHOT_SETTLE: '2s' });
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m' }, undefined), {}, 'on the schedule, as the manifest says');
  assert.deepEqual(followPingEvery({ A: 'b' }, 10_000), {}, 'instant snapshots (no range) are left as they are');
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '0' }, 10_000), {}, 'a zero range is an instant snapshot too');
});

test('kubectl kustomize renders the overlay: platform/ with the local images, schedule, range, min-scale and a TSDB claim', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-overlay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const base = parseObjects(await kustomize(platformDir), 'platform');
  const baseFn = knativeService(base, 'snapshot');
  const snapshotEnv: EnvChange = {
    container: baseFn.template.spec.containers.indexOf(baseFn.container),
    existing: (baseFn.container.env ?? []).map((e) => e.name),
    set: followPingEvery(baseFn.env.env, everyMs('10s')),
  };
  assert.deepEqual(Object.keys(snapshotEnv.set), ['SNAPSHOT_RANGE', 'SNAPSHOT_SETTLE'], 'platform/ exports ranges, so --ping-every changes them');
  const overlay = await writeOverlay({
    platformDir,
    dir: path.join(dir, 'overlay'),
    images: { simulation: localImage('simulation', '1.2.3'), snapshot: localImage('snapshot', 'abc') },
    schedule: everyToCron('10s'),
    simulationMinScale: 3,
    snapshotEnv,
  });
  const objects = parseObjects(await kustomize(overlay), 'overlay');
  assert.equal(objects.length, base.length + 1, "platform/'s objects and Prometheus's claim");

  assert.equal(schedule(objects), '*/10 * * * * *');
  const fn = knativeService(objects, 'snapshot');
  assert.equal(fn.container.image, 'dev.local/snapshot:abc');
  assert.equal(fn.env.env['SNAPSHOT_RANGE'], '10s');
  assert.equal(fn.env.env['SNAPSHOT_SETTLE'], '10s');
  assert.deepEqual(
    Object.fromEntries(Object.entries(fn.env.env).filter(([k]) => !['SNAPSHOT_RANGE', 'SNAPSHOT_SETTLE'].includes(k))),
    Object.fromEntries(Object.entries(baseFn.env.env).filter(([k]) => !['SNAPSHOT_RANGE', 'SNAPSHOT_SETTLE'].includes(k))),
    'every other variable as platform/ sets it',
  );
  const sim = knativeService(objects, 'simulation');
  assert.equal(sim.container.image, 'dev.local/simulation:1.2.3');
  assert.equal(sim.annotations['autoscaling.knative.dev/min-scale'], '3');
  const claims = objects.filter((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.namespace === 'monitoring');
  assert.equal(claims.length, 1, "Prometheus's TSDB is on a claim, kept between runs");

  await t.test('a manifest whose env moved fails the render instead of patching another variable', async () => {
    const moved = await writeOverlay({
      platformDir,
      dir: path.join(dir, 'moved'),
      images: {},
      snapshotEnv: { ...snapshotEnv, existing: ['SOMETHING_ELSE', ...snapshotEnv.existing] },
    });
    await assert.rejects(kustomize(moved), /kubectl kustomize .* failed/);
  });

  await t.test('without options, the overlay is platform/ with the images and the claim only', async () => {
    const plain = await writeOverlay({ platformDir, dir: path.join(dir, 'plain'), images: {} });
    const rendered = parseObjects(await kustomize(plain), 'plain');
    assert.equal(schedule(rendered), schedule(base));
    assert.equal(knativeService(rendered, 'snapshot').env.env['SNAPSHOT_RANGE'], baseFn.env.env['SNAPSHOT_RANGE']);
  });
});
