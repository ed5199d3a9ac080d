import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { findImage, imageId, ImageStore, parseImageLayout, parseImageReference, unknownImageMessage, type ImageLayout } from '../images.js';
import { launchFor, defaultPath } from '../launch.js';
import { securityFor } from '../security.js';

const layout = (reference: string, over: Partial<ImageLayout> = {}): ImageLayout => ({
  reference,
  binds: [{ source: '/cache/app', target: '/app' }],
  entrypoint: ['/usr/local/bin/node'],
  cmd: ['dist/server.js'],
  workdir: '/app',
  env: { NODE_ENV: 'production' },
  user: { uid: 1000, gid: 1000 },
  ...over,
});

test('references are normalised as a runtime does: docker.io, library/ and :latest implied', () => {
  assert.deepEqual(parseImageReference('busybox'), { name: 'docker.io/library/busybox', tag: 'latest', digest: undefined });
  assert.deepEqual(parseImageReference('localhost:5000/a/b:1.2'), { name: 'localhost:5000/a/b', tag: '1.2', digest: undefined });
  assert.deepEqual(parseImageReference('quay.io/prometheus/prometheus:v3.16.0'), { name: 'quay.io/prometheus/prometheus', tag: 'v3.16.0', digest: undefined });
  assert.equal(parseImageReference('ko://knative.dev/serving/cmd/queue').name, 'ko://knative.dev/serving/cmd/queue');
  assert.deepEqual(parseImageReference('dev.local/x@sha256:ab'), { name: 'dev.local/x', tag: undefined, digest: 'sha256:ab' });
});

test('a container’s image matches its layout by name and tag; another tag or an unknown name does not', () => {
  const layouts = [layout('dev.local/simulation:0.1.0'), layout('docker.io/library/busybox:1.36'), layout('ko://knative.dev/serving/cmd/queue')];
  assert.equal(findImage(layouts, 'dev.local/simulation:0.1.0')?.reference, 'dev.local/simulation:0.1.0');
  assert.equal(findImage(layouts, 'busybox:1.36')?.reference, 'docker.io/library/busybox:1.36');
  assert.equal(findImage(layouts, 'ko://knative.dev/serving/cmd/queue')?.reference, 'ko://knative.dev/serving/cmd/queue');
  assert.equal(findImage(layouts, 'dev.local/simulation:0.2.0'), undefined);
  assert.equal(findImage(layouts, 'dev.local/simulation'), undefined, 'an implied :latest is not 0.1.0');
  assert.equal(findImage(layouts, 'dev.local/simulation@sha256:00'), undefined);
  const message = unknownImageMessage('nginx:1.27', layouts);
  assert.match(message, /^image nginx:1\.27: no local build; the local node runs /);
  assert.match(message, /dev\.local\/simulation:0\.1\.0/);
  assert.notEqual(imageId(layouts[0]!), imageId({ ...layouts[0]!, cmd: ['other.js'] }));
});

test('the image store is read when asked: a layout added or changed later is seen, a broken file is reported and left out', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'node-images-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bad: string[] = [];
  const store = new ImageStore(dir, (file) => bad.push(path.basename(file)));
  await writeFile(path.join(dir, 'a.json'), JSON.stringify(layout('dev.local/a:1')));
  assert.deepEqual(
    (await store.current()).map((l) => l.reference),
    ['dev.local/a:1'],
  );
  await writeFile(path.join(dir, 'b.json'), JSON.stringify(layout('dev.local/b:1')));
  await writeFile(path.join(dir, 'a.json'), JSON.stringify(layout('dev.local/a:1', { cmd: ['other.js'] })));
  await utimes(path.join(dir, 'a.json'), new Date(), new Date(Date.now() + 5_000));
  await writeFile(path.join(dir, 'broken.json'), '{');
  const layouts = await store.current();
  assert.deepEqual(layouts.map((l) => l.reference).sort(), ['dev.local/a:1', 'dev.local/b:1']);
  assert.deepEqual(layouts.find((l) => l.reference === 'dev.local/a:1')!.cmd, ['other.js']);
  assert.deepEqual(bad, ['broken.json']);
  assert.throws(
    () => parseImageLayout(JSON.stringify({ reference: 'x', binds: [{ source: '/a', target: 'rel' }], entrypoint: [], cmd: [] }), 'f.json'),
    /f\.json \(x\): binds/,
  );
});

test('command replaces ENTRYPOINT and drops CMD; args alone replace CMD; $(VAR) expands from the container’s environment', () => {
  const image = layout('dev.local/a:1');
  const env = { PORT: '8080', NAME: 'web' };
  const launch = (container: Parameters<typeof launchFor>[0]) => {
    const decision = launchFor(container, image, env, 'web-1', 1000);
    assert.ok('launch' in decision);
    return decision.launch;
  };
  assert.deepEqual(launch({ name: 'c' }).argv, ['/usr/local/bin/node', 'dist/server.js']);
  assert.deepEqual(launch({ name: 'c', args: ['--port=$(PORT)'] }).argv, ['/usr/local/bin/node', '--port=8080']);
  assert.deepEqual(launch({ name: 'c', command: ['/bin/run', '$(NAME)'] }).argv, ['/bin/run', 'web']);
  assert.deepEqual(launch({ name: 'c', command: ['/bin/run'], args: ['$(MISSING)', '$$(PORT)'] }).argv, ['/bin/run', '$(MISSING)', '$(PORT)']);
  const l = launch({ name: 'c', workingDir: '/data' });
  assert.equal(l.cwd, '/data');
  assert.equal(launch({ name: 'c' }).cwd, '/app');
  assert.deepEqual(
    { PATH: l.env['PATH'], NODE_ENV: l.env['NODE_ENV'], HOSTNAME: l.env['HOSTNAME'], PORT: l.env['PORT'], HOME: l.env['HOME'] },
    { PATH: defaultPath, NODE_ENV: 'production', HOSTNAME: 'web-1', PORT: '8080', HOME: '/' },
  );
  const empty = launchFor({ name: 'c' }, layout('x:1', { entrypoint: [], cmd: [] }), {}, 'h', 0);
  assert.ok('error' in empty && /no command specified/.test(empty.error));
});

test('runAsNonRoot is checked as the kubelet checks it: against runAsUser, else the image’s user', () => {
  const pod = { metadata: { name: 'p', namespace: 'ns', uid: 'u' }, spec: { containers: [] } };
  const rootImage = layout('r:1', { user: undefined });
  const check = (sc: object, image = layout('a:1'), podSc: object = {}) =>
    securityFor({ ...pod, spec: { containers: [], securityContext: podSc } }, { name: 'c', securityContext: sc }, image, 'root');
  assert.deepEqual(check({ runAsNonRoot: true, runAsUser: 0 }), { error: 'container\'s runAsUser breaks non-root policy (pod: "p_ns(u)", container: c)' });
  assert.deepEqual(check({ runAsNonRoot: true }, rootImage), { error: 'container has runAsNonRoot and image will run as root (pod: "p_ns(u)", container: c)' });
  const fromImage = check({ runAsNonRoot: true });
  assert.ok('runAs' in fromImage);
  assert.deepEqual([fromImage.runAs.uid, fromImage.runAs.gid], [1000, 1000]);
  const fromPod = check({}, rootImage, { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534 });
  assert.ok('runAs' in fromPod);
  assert.deepEqual([fromPod.runAs.uid, fromPod.runAs.gid], [65534, 65534]);
  const root = check({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true }, rootImage);
  assert.ok('runAs' in root);
  assert.deepEqual(root.runAs, { uid: 0, gid: 0, noNewPrivs: true, readOnlyRootFilesystem: true, warnings: [] });
});

test('what the node cannot honour is said: extra groups, and any user on a rootless node', () => {
  const pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u' },
    spec: { containers: [], securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 2000 } },
  };
  const withGroups = securityFor(pod, { name: 'c' }, layout('a:1'), 'root');
  assert.ok('runAs' in withGroups);
  assert.match(withGroups.runAs.warnings.join(), /supplementary groups 2000 are not applied/);
  const rootless = securityFor(pod, { name: 'c' }, layout('a:1'), 'rootless');
  assert.ok('runAs' in rootless);
  assert.deepEqual([rootless.runAs.uid, rootless.runAs.gid], [0, 0]);
  assert.match(rootless.runAs.warnings.join(), /rootless local node has one mapped user/);
});
