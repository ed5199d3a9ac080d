// The image store's Docker Engine API driven by a real Docker client: the `docker` CLI on this machine
// (a client only; no engine runs here) pointed at the store's socket does what Skaffold's local builder
// does through the same API: version, inspect by tag and by ID, tag by ID, list by reference, remove.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../../tools/command.js';
import { layoutImageId, serveDockerApi, withDefaultTag } from '../docker-api.js';
import type { ImageLayout } from '../layout.js';
import { readStore, storeFile, writeToStore } from '../store.js';

const layout: ImageLayout = {
  reference: 'dev.local/simulation:abc1234-dirty',
  binds: [{ source: '/nonexistent/app', target: '/app' }],
  entrypoint: [],
  cmd: ['node', 'dist/functions/simulation/src/server.js'],
  workdir: '/app',
  env: { NODE_ENV: 'production' },
  user: { uid: 1000, gid: 1000 },
};

test("the image store answers a real Docker client as Skaffold's local daemon", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-docker-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = path.join(dir, 'images');
  await writeToStore(store, layout);
  const api = await serveDockerApi({ store, socket: path.join(dir, 'docker.sock') });
  t.after(() => api.close());
  const docker = async (...args: string[]) => {
    const result = await runCommand('docker', ['-H', `unix://${api.socket}`, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: dir },
      allowFailure: true,
    });
    return { ...result, out: result.stdout.trim() };
  };
  const id = layoutImageId(layout);

  await t.test('version: the client negotiates the API with it', async () => {
    const version = await docker('version', '--format', '{{.Server.APIVersion}} {{.Server.Os}}');
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.out, '1.47 linux');
  });

  await t.test('inspect by tag gives the image ID and the final stage\'s config; an unknown tag is "No such image"', async () => {
    const inspect = await docker('image', 'inspect', '--format', '{{.Id}} {{json .Config.Cmd}} {{.Config.User}} {{.Config.WorkingDir}}', layout.reference);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(inspect.out, `${id} ["node","dist/functions/simulation/src/server.js"] 1000:1000 /app`);
    const missing = await docker('image', 'inspect', 'dev.local/simulation:nope');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such image: dev\.local\/simulation:nope/);
  });

  await t.test("tag by ID (Skaffold's TagWithImageID) stores the same layout under the new reference, with the same ID", async () => {
    const unique = `dev.local/simulation:${id.slice('sha256:'.length)}`;
    const tagged = await docker('tag', id, unique);
    assert.equal(tagged.code, 0, tagged.stderr);
    const stored = (await readStore(store)).find((l) => l.reference === unique);
    assert.deepEqual(stored, { ...layout, reference: unique });
    const byShortId = await docker('image', 'inspect', '--format', '{{.Id}} {{len .RepoTags}}', id.slice('sha256:'.length, 'sha256:'.length + 12));
    assert.equal(byShortId.out, `${id} 2`);
  });

  await t.test("list with a reference filter, as Skaffold's pruner does", async () => {
    await writeToStore(store, { ...layout, reference: 'dev.local/snapshot:1', cmd: ['node', 'other.js'] });
    const listed = await docker('images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', '--filter', 'reference=dev.local/simulation');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.out.split('\n').sort(), [`dev.local/simulation:${id.slice(7)} ${id}`, `${layout.reference} ${id}`].sort());
  });

  await t.test('remove by tag untags; remove by ID (forced, as Skaffold prunes) deletes every tag of it', async () => {
    const untag = await docker('rmi', layout.reference);
    assert.equal(untag.code, 0, untag.stderr);
    assert.match(untag.out, /^Untagged: dev\.local\/simulation:abc1234-dirty$/m);
    assert.equal(existsSync(storeFile(store, layout.reference)), false);
    const removed = await docker('rmi', '--force', id);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.out, new RegExp(`^Deleted: ${id}$`, 'm'));
    assert.deepEqual(
      (await readStore(store)).map((l) => l.reference),
      ['dev.local/snapshot:1'],
    );
  });

  await t.test('anything else is refused, naming what this is', async () => {
    const run = await docker('ps');
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /image store answers only the image calls Skaffold's local builder makes/);
  });

  assert.equal(withDefaultTag('dev.local/x'), 'dev.local/x:latest');
  assert.equal(withDefaultTag('localhost:5000/x'), 'localhost:5000/x:latest');
});
