// The pure status function: objects as the API server returns them in, rows and the overall verdict
// out; and the table and JSON printed from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultNamespaces, pipelineNames, pipelineObjects, type ObjectRef } from '../pipeline.js';
import { formatStatusJson, formatStatusTable, pipelineStatus, tableHeaders, type ObservedObject } from '../status.js';
import { deploymentStatus, knativeStatus, readyPipeline, type Manifest } from './fixture.js';

const refs = pipelineObjects(defaultNamespaces);

/** A fixture object with the fields the cases below change (replicas on the Deployment only). */
type Observed = Manifest & { metadata: { generation?: number }; spec: { replicas?: number }; status?: unknown };

function observed(change: (objects: Observed[]) => void = () => undefined): ObservedObject[] {
  const objects = readyPipeline(defaultNamespaces) as Observed[];
  change(objects);
  return refs.map((ref, index) => ({ ref, object: objects[index] }));
}

function indexOf(resource: ObjectRef['resource'], name: string): number {
  return pipelineNames.findIndex((entry) => entry.resource === resource && entry.name === name);
}

function row(status: ReturnType<typeof pipelineStatus>, resource: ObjectRef['resource'], name: string) {
  const found = status.rows.find((r) => r.resource === resource && r.name === name);
  assert.ok(found, `no row for ${resource}/${name}`);
  return found;
}

test('a pipeline whose every object reports Ready is ready, with one row per object in pipeline order', () => {
  const status = pipelineStatus(observed());
  assert.equal(status.ready, true);
  assert.deepEqual(status.missing, []);
  assert.deepEqual(
    status.rows.map((r) => `${r.namespace}/${r.resource}/${r.name}`),
    refs.map((ref) => `${ref.namespace}/${ref.resource}/${ref.name}`),
  );
  assert.ok(status.rows.every((r) => r.ready === 'True' && r.reason === ''));
});

test('each kind shows what a user checks: replicas, URL and revision, schedule and sink, dead-letter sink', () => {
  const status = pipelineStatus(observed());
  assert.equal(row(status, 'deployment', 'prometheus').detail, '1/1 replicas ready');
  assert.equal(row(status, 'ksvc', 'simulation').detail, 'http://simulation.promsnap.example.com (revision simulation-00001)');
  assert.equal(
    row(status, 'pingsource', 'snapshot-schedule').detail,
    '"*/5 * * * *" Europe/Paris -> http://broker-ingress.knative-eventing.svc.cluster.local/promsnap/default',
  );
  assert.equal(row(status, 'broker', 'default').detail, 'http://broker-ingress.knative-eventing.svc.cluster.local/promsnap/default, no dead-letter sink');
  assert.equal(
    row(status, 'trigger', 'snapshot').detail,
    '-> http://snapshot.promsnap.svc.cluster.local, dead letters -> http://snapshot.promsnap.svc.cluster.local/dead-letters',
  );
});

test('a Knative Service whose Ready condition is False is not ready, with the condition reason and message', () => {
  const status = pipelineStatus(
    observed((objects) => {
      objects[indexOf('ksvc', 'snapshot')]!.status = knativeStatus('ksvc', 'snapshot', 'promsnap', {
        ready: 'False',
        reason: 'RevisionFailed',
        message: 'Revision "snapshot-00001" failed with message: Back-off pulling image.',
      });
    }),
  );
  assert.equal(status.ready, false);
  const snapshot = row(status, 'ksvc', 'snapshot');
  assert.equal(snapshot.ready, 'False');
  assert.equal(snapshot.reason, 'RevisionFailed');
  // Not ready yet: no latest ready revision to show.
  assert.equal(snapshot.detail, 'http://snapshot.promsnap.example.com');
  const text = formatStatusTable(status);
  assert.match(text, /ksvc\/snapshot \(promsnap\): Revision "snapshot-00001" failed with message: Back-off pulling image\./);
});

test('a Ready condition about an older generation is Unknown: the controller has not seen the latest spec', () => {
  const status = pipelineStatus(
    observed((objects) => {
      objects[indexOf('trigger', 'snapshot')]!.metadata.generation = 2;
    }),
  );
  const trigger = row(status, 'trigger', 'snapshot');
  assert.equal(trigger.ready, 'Unknown');
  assert.equal(trigger.reason, 'Reconciling');
  assert.equal(status.ready, false);
});

test('an object no controller has written a status to is Unknown, NotReconciled', () => {
  const status = pipelineStatus(
    observed((objects) => {
      delete objects[indexOf('broker', 'default')]!.status;
    }),
  );
  const broker = row(status, 'broker', 'default');
  assert.deepEqual([broker.ready, broker.reason], ['Unknown', 'NotReconciled']);
  assert.equal(broker.detail, 'no address yet, no dead-letter sink');
});

test('a Deployment counts as ready only with all desired replicas ready and up to date', () => {
  const cases: Array<[string, (d: Observed) => void, string, string]> = [
    ['one of two replicas ready', (d) => ((d.spec.replicas = 2), (d.status = deploymentStatus(1, 2))), 'False', 'MinimumReplicasUnavailable'],
    ['scaled to zero', (d) => ((d.spec.replicas = 0), (d.status = deploymentStatus(0, 0))), 'False', 'ScaledToZero'],
    ['a new generation not yet observed', (d) => (d.metadata.generation = 2), 'Unknown', 'Reconciling'],
    ['no status at all', (d) => delete d.status, 'Unknown', 'Reconciling'],
  ];
  for (const [what, change, ready, reason] of cases) {
    const status = pipelineStatus(observed((objects) => change(objects[indexOf('deployment', 'minio')]!)));
    const minio = row(status, 'deployment', 'minio');
    assert.deepEqual([minio.ready, minio.reason], [ready, reason], what);
    assert.equal(status.ready, false, what);
  }
  const twoOfTwo = pipelineStatus(
    observed((objects) => {
      const d = objects[indexOf('deployment', 'minio')]!;
      d.spec.replicas = 2;
      d.status = deploymentStatus(2, 2);
    }),
  );
  assert.equal(row(twoOfTwo, 'deployment', 'minio').detail, '2/2 replicas ready');
  assert.equal(twoOfTwo.ready, true);
});

test('a missing object is a NotFound row and listed as missing', () => {
  const status = pipelineStatus(observed().map((o) => (o.ref.resource === 'pingsource' ? { ...o, object: undefined } : o)));
  assert.equal(status.ready, false);
  assert.deepEqual(status.missing, [{ resource: 'pingsource', namespace: 'promsnap', name: 'snapshot-schedule' }]);
  assert.deepEqual(row(status, 'pingsource', 'snapshot-schedule').reason, 'NotFound');
});

test('an unresolved dead-letter sink is shown as the spec names it', () => {
  const status = pipelineStatus(
    observed((objects) => {
      objects[indexOf('trigger', 'snapshot')]!.status = knativeStatus('trigger', 'snapshot', 'promsnap', { ready: 'False', reason: 'SubscriberResolveFailed' });
    }),
  );
  assert.equal(row(status, 'trigger', 'snapshot').detail, '-> service/snapshot (unresolved), dead letters -> service/snapshot/dead-letters (unresolved)');
});

test('the table aligns every column under its header, like kubectl and kn', () => {
  const text = formatStatusTable(pipelineStatus(observed()));
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 1 + refs.length);
  const header = lines[0]!;
  assert.match(header, /^NAMESPACE\s+NAME\s+KIND\s+READY\s+REASON\s+URL\/DETAIL$/);
  // REASON is blank while everything is ready, as in kn; every other column has a value on every line.
  for (const title of tableHeaders.filter((h) => h !== 'NAMESPACE' && h !== 'REASON')) {
    const column = header.search(new RegExp(`(?<= )${title.replace('/', '\\/')}(?= |$)`));
    for (const line of lines.slice(1)) {
      assert.equal(line[column - 1], ' ', `column ${title} starts after a space in: ${line}`);
      assert.notEqual(line[column], ' ', `column ${title} starts with its value in: ${line}`);
    }
  }
  assert.match(
    lines.find((l) => l.includes('simulation'))!,
    /^promsnap\s+simulation\s+ksvc\s+True\s+http:\/\/simulation/,
  );
});

test('the JSON output carries the verdict and each object with its typed fields', () => {
  const json = JSON.parse(
    formatStatusJson(
      pipelineStatus(
        observed((objects) => {
          objects[indexOf('ksvc', 'simulation')]!.status = knativeStatus('ksvc', 'simulation', 'promsnap', { ready: 'Unknown', reason: 'Deploying' });
        }),
      ),
      'kind-promsnap',
    ),
  ) as { context: string; ready: boolean; objects: Array<{ name: string; [field: string]: unknown }> };
  assert.equal(json.context, 'kind-promsnap');
  assert.equal(json.ready, false);
  const simulation = json.objects.find((o) => o.name === 'simulation');
  assert.ok(simulation, 'simulation is in the JSON');
  assert.deepEqual(
    {
      apiVersion: simulation.apiVersion,
      kind: simulation.kind,
      ready: simulation.ready,
      reason: simulation.reason,
      url: simulation.url,
      rev: simulation.latestReadyRevisionName,
    },
    { apiVersion: 'serving.knative.dev/v1', kind: 'Service', ready: 'Unknown', reason: 'Deploying', url: 'http://simulation.promsnap.example.com', rev: null },
  );
  const prometheus = json.objects.find((o) => o.name === 'prometheus');
  assert.ok(prometheus, 'prometheus is in the JSON');
  assert.deepEqual([prometheus.apiVersion, prometheus.namespace, prometheus.readyReplicas, prometheus.desiredReplicas], ['apps/v1', 'monitoring', 1, 1]);
});
