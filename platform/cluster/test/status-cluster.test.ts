// `npm run cluster -- status` as a real process against a real kube-apiserver holding the pinned
// Knative CRDs, with the rendered platform applied to it. No controller runs there, so the test plays
// them: it writes each object's status
// through the status subresource, as the Deployment controller and Knative's reconcilers would, and
// checks that the table and the exit code follow every change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pingSource, renderPlatform } from '../../manifests/index.js';
import { startTestApiServer } from '../../testing/apiserver.js';
import { exitCodes } from '../errors.js';
import { defaultNamespaces, pipelineNames } from '../pipeline.js';
import { deploymentStatus, knativeStatus } from './fixture.js';
import { hasStackTrace, kubectlType, runCli, tableRows, writeStatus } from './harness.js';

const ns = defaultNamespaces;

test('status follows the pipeline on a real API server, row by row, with exit codes scripts can gate on', async (t) => {
  const [api, platform] = await Promise.all([startTestApiServer(), renderPlatform()]);
  t.after(() => api.stop());
  // What a user deploys (`kubectl apply -k platform`), so status reads the objects under their real names.
  await api.kubectlWith({ input: platform.yaml }, 'apply', '--server-side', '--field-manager=promsnap-test', '-f', '-');
  const schedule = pingSource(platform.objects);
  const status = async (...args: string[]) => {
    const result = await runCli(['status', ...args], api.env);
    assert.ok(!hasStackTrace(result.stdout + result.stderr), `a stack trace:\n${result.stderr}`);
    return result;
  };
  const rowsOf = (stdout: string) => new Map(tableRows(stdout).map((row) => [`${row['KIND']}/${row['NAME']}`, row]));

  await t.test('freshly applied, nothing reconciled yet: every object not ready, exit 1', async () => {
    const result = await status();
    assert.equal(result.code, exitCodes.notReady, result.stderr);
    const rows = rowsOf(result.stdout);
    assert.equal(rows.size, pipelineNames.length);
    assert.deepEqual(
      [...rows.values()].map((row) => [row['NAMESPACE'], row['KIND'], row['NAME'], row['READY'], row['REASON']]),
      [
        ['monitoring', 'deployment', 'prometheus', 'Unknown', 'Reconciling'],
        ['monitoring', 'deployment', 'kube-state-metrics', 'Unknown', 'Reconciling'],
        ['promsnap', 'deployment', 'minio', 'Unknown', 'Reconciling'],
        ['promsnap', 'ksvc', 'simulation', 'Unknown', 'NotReconciled'],
        ['promsnap', 'ksvc', 'snapshot', 'Unknown', 'NotReconciled'],
        ['promsnap', 'pingsource', 'snapshot-schedule', 'Unknown', 'NotReconciled'],
        ['promsnap', 'broker', 'default', 'Unknown', 'NotReconciled'],
        ['promsnap', 'trigger', 'snapshot', 'Unknown', 'NotReconciled'],
      ],
    );
    assert.match(result.stdout, /ksvc\/simulation \(promsnap\): no Ready condition yet: is the Knative controller running\?/);
    assert.equal(result.stderr, '');
  });

  await t.test('Deployments with their replicas ready turn True while Knative is still pending', async () => {
    await writeStatus(api, 'deployment', ns.monitoring, 'prometheus', deploymentStatus(1));
    await writeStatus(api, 'deployment', ns.monitoring, 'kube-state-metrics', deploymentStatus(1));
    await writeStatus(api, 'deployment', ns.pipeline, 'minio', deploymentStatus(0));
    const result = await status();
    assert.equal(result.code, exitCodes.notReady);
    const rows = rowsOf(result.stdout);
    assert.deepEqual([rows.get('deployment/prometheus')!['READY'], rows.get('deployment/prometheus')!['URL/DETAIL']], ['True', '1/1 replicas ready']);
    assert.equal(rows.get('deployment/kube-state-metrics')!['READY'], 'True');
    assert.deepEqual(
      [rows.get('deployment/minio')!['READY'], rows.get('deployment/minio')!['REASON'], rows.get('deployment/minio')!['URL/DETAIL']],
      ['False', 'MinimumReplicasUnavailable', '0/1 replicas ready'],
    );
  });

  await t.test('with every object reporting Ready the table is all True and the exit code 0', async () => {
    await writeStatus(api, 'deployment', ns.pipeline, 'minio', deploymentStatus(1));
    for (const { resource, namespace, name } of pipelineNames) {
      if (resource === 'deployment') continue;
      await writeStatus(api, resource, ns[namespace], name, knativeStatus(resource, name, ns[namespace], { ready: 'True' }));
    }
    const result = await status();
    assert.equal(result.code, exitCodes.ok, result.stdout + result.stderr);
    const rows = rowsOf(result.stdout);
    assert.ok(
      [...rows.values()].every((row) => row['READY'] === 'True' && row['REASON'] === ''),
      result.stdout,
    );
    assert.equal(rows.get('ksvc/simulation')!['URL/DETAIL'], 'http://simulation.promsnap.example.com (revision simulation-00001)');
    assert.equal(
      rows.get('pingsource/snapshot-schedule')!['URL/DETAIL'],
      `"${schedule.schedule}" ${schedule.timezone ?? 'UTC'} -> http://broker-ingress.knative-eventing.svc.cluster.local/promsnap/default`,
    );
    assert.equal(
      rows.get('trigger/snapshot')!['URL/DETAIL'],
      '-> http://snapshot.promsnap.svc.cluster.local, dead letters -> http://snapshot.promsnap.svc.cluster.local/dead-letters',
    );
    // Nothing but the table: no notes under it, nothing on stderr.
    assert.equal(result.stdout.trimEnd().split('\n').length, 1 + pipelineNames.length);
    assert.equal(result.stderr, '');

    const json = await status('-o', 'json', '--context', 'promsnap-test');
    assert.equal(json.code, exitCodes.ok);
    const report = JSON.parse(json.stdout) as {
      context: string;
      ready: boolean;
      objects: Array<{ kind: string; namespace: string; name: string; ready: string }>;
    };
    assert.equal(report.context, 'promsnap-test');
    assert.equal(report.ready, true);
    assert.deepEqual(
      report.objects.map((o) => `${o.kind}/${o.namespace}/${o.name}=${o.ready}`),
      pipelineNames.map(
        ({ resource, namespace, name }) =>
          `${{ deployment: 'Deployment', ksvc: 'Service', pingsource: 'PingSource', broker: 'Broker', trigger: 'Trigger' }[resource]}/${ns[namespace]}/${name}=True`,
      ),
    );
  });

  await t.test('a Knative Service that fails turns its row False with the reason, and the exit code 1', async () => {
    const message = 'Revision "snapshot-00002" failed with message: Back-off pulling image "snapshot:2".';
    await writeStatus(api, 'ksvc', ns.pipeline, 'snapshot', {
      conditions: [{ type: 'Ready', status: 'False', reason: 'RevisionFailed', message, lastTransitionTime: '2026-11-25T10:05:00Z' }],
    });
    const result = await status();
    assert.equal(result.code, exitCodes.notReady);
    const snapshot = rowsOf(result.stdout).get('ksvc/snapshot')!;
    assert.deepEqual([snapshot['READY'], snapshot['REASON']], ['False', 'RevisionFailed']);
    assert.ok(result.stdout.includes(`ksvc/snapshot (promsnap): ${message}`), result.stdout);
    await writeStatus(api, 'ksvc', ns.pipeline, 'snapshot', knativeStatus('ksvc', 'snapshot', ns.pipeline, { ready: 'True' }));
    assert.equal((await status()).code, exitCodes.ok);
  });

  await t.test('a spec change the controller has not observed yet is Unknown until it writes a status for it', async () => {
    await api.kubectl(
      'patch',
      kubectlType('trigger'),
      'snapshot',
      '-n',
      ns.pipeline,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { delivery: { retry: 5 } } }),
    );
    const pending = await status();
    assert.equal(pending.code, exitCodes.notReady);
    const trigger = rowsOf(pending.stdout).get('trigger/snapshot')!;
    assert.deepEqual([trigger['READY'], trigger['REASON']], ['Unknown', 'Reconciling']);
    await writeStatus(api, 'trigger', ns.pipeline, 'snapshot', knativeStatus('trigger', 'snapshot', ns.pipeline, { ready: 'True', observedGeneration: 2 }));
    assert.equal((await status()).code, exitCodes.ok);
  });

  await t.test('a deleted object is a NotFound row and an error naming it, exit 5', async () => {
    await api.kubectl('delete', kubectlType('pingsource'), 'snapshot-schedule', '-n', ns.pipeline);
    const result = await status();
    assert.equal(result.code, exitCodes.objectsMissing);
    const row = rowsOf(result.stdout).get('pingsource/snapshot-schedule')!;
    assert.deepEqual([row['READY'], row['REASON']], ['False', 'NotFound']);
    assert.equal(
      result.stderr,
      'error: 1 pipeline object is missing: pingsource/snapshot-schedule in namespace promsnap.\n' +
        '  Deploy the pipeline with `skaffold run` (or `kubectl apply -k platform`), or pass --namespace/--monitoring-namespace where you deployed it.\n',
    );
  });

  await t.test('--namespace points status at another namespace; there the pipeline objects are all missing', async () => {
    await api.kubectl('create', 'namespace', 'elsewhere');
    const result = await status('--namespace', 'elsewhere');
    assert.equal(result.code, exitCodes.objectsMissing);
    const rows = tableRows(result.stdout);
    assert.deepEqual(
      rows.filter((row) => row['NAMESPACE'] === 'elsewhere').map((row) => row['REASON']),
      Array(pipelineNames.filter((entry) => entry.namespace === 'pipeline').length).fill('NotFound'),
    );
    // Prometheus and kube-state-metrics are still looked for in monitoring, where they are.
    assert.deepEqual(
      rows.filter((row) => row['NAMESPACE'] === 'monitoring').map((row) => row['READY']),
      ['True', 'True'],
    );
    assert.match(
      result.stderr,
      /^error: 6 pipeline objects are missing: deployment\/minio, ksvc\/simulation, ksvc\/snapshot, pingsource\/snapshot-schedule, broker\/default, trigger\/snapshot in namespace elsewhere\.\n/,
    );
  });
});
