// Deriving pod templates and service accounts from rendered manifests: the lists the platform test
// checks come from here, so an account it missed would go unchecked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountsToken, namespacesOf, parseManifests, podTemplates, serviceAccounts } from '../manifests.js';

const manifests = parseManifests(`
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: quiet, namespace: apps}
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: web:1}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: apps}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          serviceAccountName: quiet
          automountServiceAccountToken: true
          containers: [{name: job, image: job:1}]
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: fn, namespace: apps}
spec:
  template:
    spec:
      serviceAccountName: quiet
      containers: [{image: fn:1}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - {kind: ServiceAccount, name: robot, namespace: ops}
  - {kind: User, name: alice}
`);

test('pod templates are found in Deployments, CronJobs and Knative Services alike', () => {
  assert.deepEqual(
    podTemplates(manifests).map((p) => p.owner),
    ['Deployment/apps/web', 'CronJob/apps/nightly', 'Service/apps/fn'],
  );
});

test('service accounts: declared, run as by pods (default when unnamed), and named by bindings', () => {
  const accounts = serviceAccounts(manifests);
  assert.deepEqual(
    accounts.map((a) => [a.username, a.declared, a.usedBy.map((p) => p.owner)]),
    [
      ['system:serviceaccount:apps:default', false, ['Deployment/apps/web']],
      ['system:serviceaccount:apps:quiet', true, ['CronJob/apps/nightly', 'Service/apps/fn']],
      ['system:serviceaccount:ops:robot', false, []],
    ],
  );
});

test("a pod's automountServiceAccountToken wins over its account's, which wins over the default (mount)", () => {
  const accounts = serviceAccounts(manifests);
  const quiet = accounts.find((a) => a.name === 'quiet')!;
  const web = podTemplates(manifests).find((p) => p.owner === 'Deployment/apps/web')!;
  const [nightly, fn] = quiet.usedBy;
  assert.equal(mountsToken(web, accounts.find((a) => a.name === 'default')), true);
  assert.equal(mountsToken(nightly!, quiet), true);
  assert.equal(mountsToken(fn!, quiet), false);
});

test('namespaces are those created and those objects live in', () => {
  assert.deepEqual(namespacesOf(manifests), ['apps']);
});

test('a document that is not a Kubernetes object is refused', () => {
  assert.throws(() => parseManifests('kind: Thing\n'), /not a Kubernetes object/);
  assert.throws(() => parseManifests('a: [\n'), /invalid YAML/);
});
