// skaffold.yaml, read by the pinned Skaffold itself (`skaffold diagnose --yaml-only`, `skaffold render
// --offline`) and checked against the repository: artifacts whose Dockerfiles exist and whose names
// are the bare images of the manifests, the kustomize tree, port forwards that reach real Service
// ports on 127.0.0.1, and a commented kind profile. Nothing is built: there is no Docker engine here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parse as parseYaml, parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { runCommand } from '../tools/command.js';
import { findTool } from '../tools/find.js';
import { allContainers, describeObject, parseObjects, podTemplates, renderPlatform, servicePorts } from '../manifests/index.js';
import { toolDir, versions } from '../tools/versions.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const skaffoldFile = path.join(repoRoot, 'skaffold.yaml');

interface SkaffoldConfig {
  apiVersion: string;
  kind: string;
  build: { artifacts: Array<{ image: string; context?: string; docker?: { dockerfile?: string } }>; local?: { push?: boolean } };
  manifests: { kustomize: { paths: string[] } };
  deploy: { kubectl?: unknown };
  portForward: Array<{ resourceType: string; resourceName: string; namespace: string; port: number; address?: string; localPort?: number }>;
  profiles?: Array<{ name: string; activation?: Array<{ kubeContext?: string }>; patches?: Array<{ op: string; path: string; value?: unknown }> }>;
}

async function skaffold(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(findTool('skaffold'), args, {
    cwd: repoRoot,
    // Its own HOME and no kubeconfig: no telemetry prompt, no update check, no cluster reached.
    env: { PATH: process.env['PATH'] ?? '', HOME: home, KUBECONFIG: path.join(home, 'no-kubeconfig'), SKAFFOLD_UPDATE_CHECK: 'false' },
    allowFailure: true,
  });
}

test(`skaffold.yaml, as Skaffold ${versions.skaffold} reads it`, async (t) => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'promsnap-skaffold-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const text = await readFile(skaffoldFile, 'utf8');
  const config = parseYaml(text) as SkaffoldConfig;
  const { objects } = await renderPlatform();

  await t.test('the Skaffold used is the pinned one', () => {
    assert.equal(path.dirname(path.dirname(findTool('skaffold'))), toolDir('skaffold'));
  });

  await t.test('apiVersion is the newest this Skaffold knows, and it accepts the file (skaffold diagnose --yaml-only)', async () => {
    const schemas = await skaffold(home, 'schema', 'list');
    assert.equal(schemas.code, 0, schemas.stderr);
    assert.equal(config.apiVersion, schemas.stdout.trim().split('\n').at(-1));
    assert.equal(config.kind, 'Config');
    const diagnosed = await skaffold(home, 'diagnose', '--yaml-only');
    assert.equal(diagnosed.code, 0, diagnosed.stderr);
    assert.match(diagnosed.stdout, /^apiVersion: skaffold\/v4beta\d+$/m);
  });

  await t.test('the check can fail: a misspelled field is refused with its line', async () => {
    const broken = path.join(home, 'skaffold.yaml');
    await writeFile(broken, text.replace('      context: .', '      contxt: .'));
    const result = await skaffold(home, 'diagnose', '--yaml-only', '--filename', broken);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /line \d+: field contxt not found/);
  });

  await t.test('one artifact per function: context the repository root, its own Dockerfile, which exists', () => {
    const functions = ['simulation', 'snapshot'];
    assert.deepEqual(
      config.build.artifacts.map((a) => a.image),
      functions,
    );
    for (const artifact of config.build.artifacts) {
      assert.equal(artifact.context, '.');
      assert.equal(artifact.docker?.dockerfile, `functions/${artifact.image}/Dockerfile`);
      assert.ok(existsSync(path.join(repoRoot, artifact.docker.dockerfile)), `${artifact.docker.dockerfile} exists`);
    }
  });

  await t.test('the artifacts are exactly the bare image names in the manifests, each in a Knative Service', () => {
    const bare = podTemplates(objects).flatMap((p) =>
      allContainers(p.spec)
        .filter((c) => !c.image.includes('/') && !c.image.includes(':') && !c.image.includes('@'))
        .map((c) => ({ image: c.image, owner: describeObject(p.owner) })),
    );
    assert.deepEqual(
      bare.sort((a, b) => a.image.localeCompare(b.image)),
      config.build.artifacts.map((a) => ({ image: a.image, owner: `Service.serving.knative.dev/promsnap/${a.image}` })),
    );
  });

  await t.test('manifests come from the kustomize tree, deployed with kubectl', () => {
    assert.deepEqual(config.manifests.kustomize.paths, ['platform']);
    assert.ok(existsSync(path.join(repoRoot, 'platform', 'kustomization.yaml')));
    assert.ok(config.deploy.kubectl !== undefined, 'deploy.kubectl');
  });

  await t.test('port forwards: Prometheus 9090, MinIO 9000 and its console 9001, on 127.0.0.1, each a real Service port', () => {
    const forwards = config.portForward.map((f) => `${f.resourceType}/${f.namespace}/${f.resourceName}:${f.port}->${f.address}:${f.localPort}`);
    assert.deepEqual(forwards, [
      'service/monitoring/prometheus:9090->127.0.0.1:9090',
      'service/promsnap/minio:9000->127.0.0.1:9000',
      'service/promsnap/minio:9001->127.0.0.1:9001',
    ]);
    for (const forward of config.portForward) {
      assert.ok(
        servicePorts(objects, forward.resourceName, forward.namespace).some((p) => p.port === forward.port),
        `${forward.resourceName}:${forward.port}`,
      );
    }
  });

  await t.test('a local-cluster profile (kind), activated by its context, every profile and patch with a comment saying why', async () => {
    const kind = config.profiles?.find((p) => p.name === 'kind');
    assert.ok(kind, 'a kind profile');
    assert.ok(
      kind.activation?.some((a) => a.kubeContext && new RegExp(`^${a.kubeContext}$`).test('kind-promsnap')),
      'active for a kind-* context',
    );
    const doc = parseDocument(text);
    const profiles = doc.get('profiles');
    assert.ok(isSeq(profiles));
    // A comment above a list's first item belongs to the list in the yaml library's model.
    const commented = (list: { commentBefore?: string | null }, item: { commentBefore?: string | null }, index: number) =>
      Boolean(item.commentBefore?.trim() || (index === 0 && list.commentBefore?.trim()));
    for (const [i, profile] of profiles.items.entries()) {
      assert.ok(isMap(profile));
      assert.ok(commented(profiles, profile, i), `profile ${String(profile.get('name'))} has a comment`);
      const patches = profile.get('patches');
      for (const [j, patch] of (isSeq(patches) ? patches.items : []).entries()) {
        assert.ok(commented(patches as YAMLSeq, patch as YAMLMap, j), `patch ${j} of ${String(profile.get('name'))} has a comment`);
      }
    }
    const patched = await skaffold(home, 'diagnose', '--yaml-only', '--profile', 'kind');
    assert.equal(patched.code, 0, patched.stderr);
    assert.equal((parseYaml(patched.stdout) as SkaffoldConfig).build.local?.push, false, 'kind: images are loaded, not pushed');
  });

  await t.test('skaffold render --offline renders the same objects, with each artifact put into its Knative Service', async () => {
    const rendered = await skaffold(home, 'render', '--offline=true', '--digest-source=tag');
    assert.equal(rendered.code, 0, rendered.stderr);
    const skaffolded = parseObjects(rendered.stdout, 'skaffold render');
    assert.deepEqual(skaffolded.map(describeObject).sort(), objects.map(describeObject).sort());
    const images = (list: typeof objects) =>
      Object.fromEntries(podTemplates(list).map((p) => [describeObject(p.owner), allContainers(p.spec).map((c) => c.image)]));
    const before = images(objects);
    const after = images(skaffolded);
    for (const [owner, list] of Object.entries(before)) {
      const expected = list.map((image) => (config.build.artifacts.some((a) => a.image === image) ? new RegExp(`^${image}:[0-9a-f]{7,}(-dirty)?$`) : image));
      assert.equal(after[owner]!.length, expected.length, owner);
      after[owner]!.forEach((image, i) => {
        const want = expected[i]!;
        if (typeof want === 'string') assert.equal(image, want, owner);
        else assert.match(image, want, owner);
      });
    }
  });
});
