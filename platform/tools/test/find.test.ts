import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cachedBinary, findTool, MissingToolError } from '../find.js';
import { versions } from '../versions.js';

test('findTool finds an executable on the search path, and names the install command when it is missing', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-find-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'prometheus'), '#!/bin/sh\n');
  await writeFile(path.join(dir, 'mc'), 'not executable');
  await chmod(path.join(dir, 'prometheus'), 0o755);
  assert.equal(findTool('prometheus', `/nonexistent:${dir}`), path.join(dir, 'prometheus'));
  assert.throws(
    () => findTool('mc', dir),
    (err: unknown) => err instanceof MissingToolError && err.installCommand === 'bash platform/tools/provision.sh mc',
  );
});

test('cachedBinary looks in the versioned cache folder, and names the provision step when it is missing', async (t) => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'promsnap-cache-'));
  t.after(() => rm(cache, { recursive: true, force: true }));
  const env = { PROMSNAP_CACHE: cache };
  assert.throws(
    () => cachedBinary('etcd', 'etcd', env),
    (err: unknown) =>
      err instanceof MissingToolError && err.message.includes(`etcd ${versions.etcd}`) && err.installCommand === 'bash platform/tools/provision.sh etcd',
  );
  await mkdir(path.join(cache, `etcd-${versions.etcd}`, 'bin'), { recursive: true });
  await writeFile(path.join(cache, `etcd-${versions.etcd}`, 'bin', 'etcd'), '');
  assert.equal(cachedBinary('etcd', 'etcd', env), path.join(cache, `etcd-${versions.etcd}`, 'bin', 'etcd'));
});
