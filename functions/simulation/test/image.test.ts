// The simulation image, proved without a Docker engine: its Dockerfile replayed by
// platform/testing/image.ts, then its own CMD started as its non-root USER.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { packagesLoadedBy, runImage } from '../../../platform/testing/image.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

test('the image, laid out as its Dockerfile lays it, runs as non-root on production dependencies and answers /readyz', async (t) => {
  const image = await runImage({
    dockerfile: path.join(repoRoot, 'functions/simulation/Dockerfile'),
    context: repoRoot,
    readyPath: '/readyz',
  });
  t.after(() => image.stop());

  const ready = await fetch(`${image.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready' });
  const metrics = await (await fetch(`${image.url}/metrics`)).text();
  // Two: the readiness poll's and this test's.
  assert.match(metrics, /^simulation_app_requests_total\{method="GET",route="\/readyz",statusCode="200",app="simulation"\} 2$/m);

  // What the Dockerfile promises.
  const nodeVersion = /^NODE_VERSION=(\S+)$/m.exec(await readFile(path.join(repoRoot, 'platform/tools/versions.env'), 'utf8'))?.[1];
  assert.deepEqual(
    image.stages.map((s) => s.image),
    [`node:${nodeVersion}-bookworm-slim`, `node:${nodeVersion}-bookworm-slim`],
    'both stages on the pinned Node',
  );
  assert.deepEqual(image.final.cmd, ['node', 'dist/functions/simulation/src/server.js']);
  assert.equal(image.final.env['NODE_ENV'], 'production');
  assert.deepEqual(image.final.expose, ['8080']);
  assert.ok(image.devPackagesChecked > 50, `${image.devPackagesChecked} dev-only packages checked absent`);

  // Its production dependencies are exactly what its compiled code loads, and all are installed.
  const declared = Object.keys(
    (JSON.parse(await readFile(path.join(repoRoot, 'functions/simulation/package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies,
  ).sort();
  const loaded = await packagesLoadedBy(path.join(image.workdir, image.final.cmd[1]!));
  assert.deepEqual(loaded, declared, 'packages loaded by the code = dependencies in functions/simulation/package.json');
  for (const name of declared) assert.ok(existsSync(path.join(image.workdir, 'node_modules', name)), `${name} is installed in the image`);

  // The process really runs as the image's user, not as this (root) test runner.
  const status = await readFile(`/proc/${image.process.pid}/status`, 'utf8');
  const uids = /^Uid:\s+(\d+)/m.exec(status)?.[1];
  assert.equal(Number(uids), 1000);
  assert.equal(image.uid, 1000);
});
