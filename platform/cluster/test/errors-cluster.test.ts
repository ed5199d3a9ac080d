// What a user sees when the cluster is not there or not ready for promsnap: no kubeconfig, an API
// server that does not answer, credentials it refuses, a user it forbids, and a real kube-apiserver
// without Knative's CRDs. Each is one or two lines and the next step, a non-zero exit code, and never
// a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { knativeCrdDirectoryPaths, startTestApiServer } from '../../testing/apiserver.js';
import { freePort } from '../../tools/ports.js';
import { waitFor } from '../../tools/wait.js';
import { exitCodes } from '../errors.js';
import { installCommands } from '../knative.js';
import { hasStackTrace, runCli, type CliResult } from './harness.js';

function kubeconfig(server: string, token: string, context = 'test'): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: context, context: { cluster: 'c', user: 'u' } }],
    'current-context': context,
  });
}

/** The shape every error has: `error: ` and at most a few lines, nothing on stdout, no stack. */
function assertCleanError(result: CliResult, code: number, maxLines = 2): string[] {
  assert.equal(result.code, code, `exit code; stderr:\n${result.stderr}`);
  assert.equal(result.stdout, '');
  assert.ok(!hasStackTrace(result.stderr), `stack trace in:\n${result.stderr}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, /^error: /);
  assert.ok(lines.length <= maxLines, `${lines.length} lines:\n${result.stderr}`);
  return lines;
}

test('errors on the way to the cluster: one or two lines, the next step, a non-zero exit', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-cluster-errors-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Each run gets only what it is given: no KUBECONFIG from the developer's shell, a HOME without ~/.kube.
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const base: NodeJS.ProcessEnv = { ...process.env, HOME: dir };
    delete base['KUBECONFIG'];
    delete base['KUBERNETES_SERVICE_HOST'];
    return { ...base, ...extra };
  };

  await t.test('no kubeconfig anywhere: exit 3, saying where it looked', async () => {
    for (const command of ['status', 'load']) {
      const lines = assertCleanError(await runCli([command], env({})), exitCodes.cluster);
      assert.equal(lines[0], `error: no kubeconfig found (looked for ${path.join(dir, '.kube', 'config')}).`);
    }
    const missing = path.join(dir, 'nowhere.yaml');
    const lines = assertCleanError(await runCli(['status'], env({ KUBECONFIG: missing })), exitCodes.cluster);
    assert.equal(lines[0], `error: no kubeconfig found (looked for KUBECONFIG=${missing}).`);
  });

  await t.test('a kubeconfig that is not YAML, and a context it does not have: exit 3', async () => {
    const broken = path.join(dir, 'broken.yaml');
    await writeFile(broken, 'clusters: [unclosed\n');
    assertCleanError(await runCli(['status'], env({ KUBECONFIG: broken })), exitCodes.cluster);
    const good = path.join(dir, 'good.yaml');
    await writeFile(good, kubeconfig('https://127.0.0.1:6443', 'x', 'dev'));
    const lines = assertCleanError(await runCli(['status', '--context', 'prod'], env({ KUBECONFIG: good })), exitCodes.cluster);
    assert.equal(lines[0], 'error: context "prod" is not in the kubeconfig (contexts: dev).');
  });

  await t.test('an API server that does not answer: exit 3, naming the server and the context', async () => {
    const port = await freePort();
    const file = path.join(dir, 'unreachable.yaml');
    await writeFile(file, kubeconfig(`https://127.0.0.1:${port}`, 'x', 'gone'));
    for (const command of ['status', 'load']) {
      const lines = assertCleanError(await runCli([command], env({ KUBECONFIG: file })), exitCodes.cluster);
      assert.equal(
        lines[0],
        `error: cannot reach the Kubernetes API server https://127.0.0.1:${port} (context "gone"): connect ECONNREFUSED 127.0.0.1:${port}.`,
      );
      assert.equal(lines[1], '  Check that the cluster is running and that `kubectl --context gone cluster-info` works.');
    }
  });

  const api = await startTestApiServer({ crdDirectoryPaths: [] });
  t.after(() => api.stop());

  await t.test('credentials the API server refuses: exit 3', async () => {
    const file = path.join(dir, 'bad-token.yaml');
    await writeFile(file, kubeconfig(api.url, 'not-the-token'));
    const lines = assertCleanError(await runCli(['status'], env({ KUBECONFIG: file })), exitCodes.cluster);
    assert.match(lines[0]!, /refused the credentials of context "test" \(401 Unauthorized\)/);
  });

  await t.test('a real API server without Knative: exit 4 with the commands that install the pinned release', async () => {
    const result = await runCli(['status'], env({ KUBECONFIG: api.kubeconfigPath }));
    const lines = assertCleanError(result, exitCodes.knativeMissing, 8);
    assert.match(
      lines[0]!,
      /^error: Knative Serving knative-v1\.\d+\.\d+ \(knative\.dev\/serving v[\d.]+\) and Knative Eventing knative-v1\.\d+\.\d+ \(knative\.dev\/eventing v[\d.]+\) are not installed on this cluster \(its CRDs are missing\)\. Install them with:$/,
    );
    assert.deepEqual(
      lines.slice(1),
      [...installCommands('serving'), ...installCommands('eventing')].map((command) => `  ${command}`),
    );
  });

  await t.test('with Serving installed but not Eventing, status asks for Eventing only; load needs only Serving', async () => {
    const [servingCrds] = knativeCrdDirectoryPaths();
    await api.kubectl('apply', '--server-side', '-f', servingCrds!);
    await waitFor(
      async () =>
        (await api.getJson<{ resources: Array<{ name: string }> }>('/apis/serving.knative.dev/v1').catch(() => ({ resources: [] }))).resources.some(
          (r) => r.name === 'services',
        ),
      {
        what: 'Knative Serving CRDs served',
      },
    );
    const status = assertCleanError(await runCli(['status'], env({ KUBECONFIG: api.kubeconfigPath })), exitCodes.knativeMissing, 5);
    assert.match(status[0]!, /^error: Knative Eventing .* is not installed/);
    assert.deepEqual(
      status.slice(1),
      installCommands('eventing').map((command) => `  ${command}`),
    );
    // load goes on to look for the simulation, which is not deployed.
    const load = assertCleanError(await runCli(['load'], env({ KUBECONFIG: api.kubeconfigPath })), exitCodes.objectsMissing);
    assert.match(load[0]!, /^error: 1 pipeline object is missing: ksvc\/simulation in namespace promsnap\.$/);
  });

  await t.test('a user RBAC does not let read the pipeline: exit 3, naming what it may not do', async () => {
    await api.kubectl('create', 'serviceaccount', 'nobody', '-n', 'default');
    const token = (await api.kubectl('create', 'token', 'nobody', '-n', 'default')).stdout.trim();
    const file = path.join(dir, 'nobody.yaml');
    await writeFile(file, kubeconfig(api.url, token, 'nobody'));
    const lines = assertCleanError(await runCli(['load'], env({ KUBECONFIG: file })), exitCodes.cluster);
    assert.match(
      lines[0]!,
      /^error: context "nobody" may not get ksvc\/simulation in namespace promsnap: services\.serving\.knative\.dev "simulation" is forbidden: User "system:serviceaccount:default:nobody" cannot get resource "services"/,
    );
  });
});
