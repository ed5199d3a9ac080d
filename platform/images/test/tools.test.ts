// The pinned tools' images: every image the platform's manifests and Knative's own config/ name is mapped,
// each to the binary provision.sh built, and the store holds them all.
import assert from 'node:assert/strict';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { toolDir } from '../../tools/versions.js';
import { kubeStateMetricsImage, knativeCommands, readStore, toolImages, writeToolImages } from '../index.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const references = new Set(toolImages().map((layout) => layout.reference));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.yaml'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function imagesIn(files: string[]): Set<string> {
  const images = new Set<string>();
  for (const file of files) for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:-\s*)?image:\s*["']?([^"'\s#]+)/gm)) images.add(match[1]!);
  return images;
}

test("every image the platform's manifests name is mapped, apart from the project's own builds", () => {
  const manifests = yamlFiles(path.join(repoRoot, 'platform')).filter((file) => !file.includes(`${path.sep}test${path.sep}`));
  const named = [...imagesIn(manifests)].filter((image) => !['simulation', 'snapshot'].includes(image)).sort();
  assert.ok(named.length >= 4, named.join(', '));
  assert.deepEqual(
    named.filter((image) => !references.has(image)),
    [],
  );
  assert.ok(references.has(kubeStateMetricsImage));
});

test("every ko:// image of Knative Serving's config/ is mapped, and Eventing's that provision.sh builds", (t) => {
  const serving = imagesIn(yamlFiles(path.join(toolDir('knative-serving-src'), 'src', 'config', 'core')));
  const servingKo = [...serving].filter((image) => image.startsWith('ko://')).sort();
  assert.deepEqual(
    servingKo.filter((image) => !references.has(image)),
    [],
  );
  assert.equal(servingKo.length, 5);
  const eventingConfig = path.join(toolDir('knative-eventing-src'), 'src', 'config');
  const eventingKo = [...imagesIn(yamlFiles(eventingConfig))].filter((image) => image.startsWith('ko://knative.dev/eventing/')).sort();
  const built = Object.values(knativeCommands['knative-eventing']).map((cmd) => `ko://knative.dev/eventing/cmd/${cmd}`);
  for (const image of built) assert.ok(eventingKo.includes(image), `${image} is named in Eventing's config/`);
  t.diagnostic(
    `Eventing images not built by provision.sh (not runnable on the local node yet): ${eventingKo.filter((image) => !references.has(image)).join(', ')}`,
  );
});

test('each tool image binds the binary provision.sh built, where the real image keeps it', () => {
  for (const layout of toolImages()) {
    assert.ok(layout.binds.length > 0, layout.reference);
    for (const bind of layout.binds) {
      assert.ok(path.isAbsolute(bind.source) && bind.target.startsWith('/'), `${layout.reference}: ${JSON.stringify(bind)}`);
      accessSync(bind.source, constants.X_OK);
    }
  }
  const byReference = new Map(toolImages().map((layout) => [layout.reference, layout]));
  const queue = byReference.get('ko://knative.dev/serving/cmd/queue')!;
  assert.deepEqual(queue.binds, [{ source: path.join(toolDir('knative-serving'), 'bin', 'queue'), target: '/ko-app/queue' }]);
  assert.deepEqual(queue.entrypoint, ['/ko-app/queue']);
  assert.deepEqual(queue.user, { uid: 65532, gid: 65532 });
  const ingress = byReference.get('ko://knative.dev/eventing/cmd/broker/ingress')!;
  assert.deepEqual(ingress.binds, [{ source: path.join(toolDir('knative-eventing'), 'bin', 'ingress'), target: '/ko-app/ingress' }]);
  const prometheus = [...byReference.values()].find((layout) => layout.reference.startsWith('quay.io/prometheus/prometheus:'))!;
  assert.deepEqual(prometheus.entrypoint, ['/bin/prometheus']);
  assert.equal(prometheus.workdir, '/prometheus');
  assert.deepEqual(prometheus.user, { uid: 65534, gid: 65534 });
});

test('writeToolImages puts every tool image in the store, one file each', async (t) => {
  const store = await mkdtemp(path.join(tmpdir(), 'promsnap-image-store-'));
  t.after(() => rm(store, { recursive: true, force: true }));
  const written = await writeToolImages(store);
  assert.equal((await readdir(store)).length, written.length);
  const sortByReference = (layouts: typeof written) => [...layouts].sort((a, b) => a.reference.localeCompare(b.reference));
  assert.deepEqual(sortByReference(await readStore(store)), sortByReference(toolImages()));
});
