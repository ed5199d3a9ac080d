// platform/images' builds: a Dockerfile replayed once into a content-keyed cache, laid out as the node
// binds it, found again at once while its sources are unchanged, rebuilt when they change, and written
// into the image store the node reads.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildImage, buildImageFiles, readStore, storeFile } from '../index.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const base = `node:${process.versions.node}-bookworm-slim`;

test('the simulation image: built once, laid out for the node, found again at once while unchanged', async (t) => {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'promsnap-images-'));
  t.after(() => rm(cacheDir, { recursive: true, force: true }));
  const dockerfile = path.join(repoRoot, 'functions/simulation/Dockerfile');

  let started = Date.now();
  const first = await buildImageFiles({ dockerfile, context: repoRoot, cacheDir });
  const firstMs = Date.now() - started;
  started = Date.now();
  const second = await buildImageFiles({ dockerfile, context: repoRoot, cacheDir });
  const secondMs = Date.now() - started;
  t.diagnostic(`first build ${firstMs} ms, second ${secondMs} ms`);
  assert.equal(first.built, true);
  assert.equal(second.built, false, 'the second build of unchanged sources reuses the first');
  assert.equal(second.dir, first.dir);
  assert.ok(secondMs * 5 < firstMs, `second ${secondMs} ms against first ${firstMs} ms`);

  const store = path.join(cacheDir, 'store');
  const layout = await buildImage({ dockerfile, context: repoRoot, cacheDir, reference: 'dev.local/simulation:0.1.0', store });
  assert.deepEqual(layout.binds, [
    { source: path.join(first.rootfs, 'app'), target: '/app' },
    { source: await realpath(process.execPath), target: '/usr/local/bin/node' },
  ]);
  assert.deepEqual(layout.entrypoint, []);
  assert.deepEqual(layout.cmd, ['node', 'dist/functions/simulation/src/server.js']);
  assert.equal(layout.workdir, '/app');
  assert.equal(layout.env['NODE_ENV'], 'production');
  assert.match(layout.env['PATH']!, /(^|:)\/usr\/local\/bin(:|$)/);
  assert.deepEqual(layout.user, { uid: 1000, gid: 1000 });
  // What the container starts is in the bound folders: its compiled entry point and its production dependencies.
  assert.ok(existsSync(path.join(first.rootfs, 'app/dist/functions/simulation/src/server.js')));
  assert.ok(existsSync(path.join(first.rootfs, 'app/node_modules/express/package.json')));
  assert.equal(existsSync(path.join(first.rootfs, 'app/node_modules/typescript')), false);

  // The store holds it under its reference, whole.
  assert.deepEqual(JSON.parse(await readFile(storeFile(store, 'dev.local/simulation:0.1.0'), 'utf8')), layout);
  assert.deepEqual(await readStore(store), [layout]);
});

test('a change in what COPY takes from the context is a new build; the Dockerfile alone decides what else counts', async (t) => {
  const context = await mkdtemp(path.join(tmpdir(), 'promsnap-image-context-'));
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'promsnap-images-'));
  t.after(() => Promise.all([rm(context, { recursive: true, force: true }), rm(cacheDir, { recursive: true, force: true })]));
  await writeFile(
    path.join(context, 'Dockerfile'),
    [`FROM ${base}`, 'WORKDIR /srv', 'COPY server.js ./', 'COPY config/ ./config/', 'USER 1000:1000', 'CMD ["node", "server.js"]'].join('\n'),
  );
  await writeFile(path.join(context, 'server.js'), 'console.log("one");\n');
  await mkdir(path.join(context, 'config'));
  await writeFile(path.join(context, 'config', 'a.json'), '{}\n');
  await writeFile(path.join(context, 'notes.txt'), 'not copied\n');
  const dockerfile = path.join(context, 'Dockerfile');
  const build = () => buildImageFiles({ dockerfile, context, cacheDir });

  const one = await build();
  await writeFile(path.join(context, 'notes.txt'), 'changed, but no COPY takes it\n');
  assert.equal((await build()).built, false);
  await writeFile(path.join(context, 'config', 'b.json'), '{"new": true}\n');
  const two = await build();
  assert.equal(two.built, true, 'a file added to a copied folder is a change');
  assert.notEqual(two.key, one.key);
  await writeFile(path.join(context, 'server.js'), 'console.log("two");\n');
  const three = await build();
  assert.equal(three.built, true);
  assert.equal(await readFile(path.join(three.rootfs, 'srv/server.js'), 'utf8'), 'console.log("two");\n');
  // Older builds stay (a running pod may have one bound) until a day has passed.
  assert.ok(existsSync(one.dir) && existsSync(two.dir));

  // Builds of one key started together in one process replay once.
  await writeFile(path.join(context, 'server.js'), 'console.log("three");\n');
  const [a, b] = await Promise.all([build(), build()]);
  assert.equal(a.dir, b.dir);
  assert.deepEqual(
    (await readdir(cacheDir)).filter((name) => name.startsWith('.')),
    [],
    'no build folder left behind',
  );
});

test('a build that fails leaves nothing in the cache and is not remembered', async (t) => {
  const context = await mkdtemp(path.join(tmpdir(), 'promsnap-image-context-'));
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'promsnap-images-'));
  t.after(() => Promise.all([rm(context, { recursive: true, force: true }), rm(cacheDir, { recursive: true, force: true })]));
  const dockerfile = path.join(context, 'Dockerfile');
  await writeFile(dockerfile, [`FROM ${base}`, 'WORKDIR /srv', 'COPY missing.js ./', 'USER 1000', 'CMD ["node", "missing.js"]'].join('\n'));
  await assert.rejects(buildImageFiles({ dockerfile, context, cacheDir }), /line 3: COPY source .*missing\.js does not exist/);
  assert.deepEqual(await readdir(cacheDir), []);
  await writeFile(path.join(context, 'missing.js'), '\n');
  assert.equal((await buildImageFiles({ dockerfile, context, cacheDir })).built, true);
});
