// Deriving pod templates and service accounts from rendered manifests (platform/manifests/): the lists the
// platform test on the API server (apiserver-platform.test.ts) checks come from here, so an account
// missed here would go unchecked there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeObject, mountsToken, namespacesOf, parseObjects, podTemplates, serviceAccounts } from '../manifests/index.js';

const manifests = parseObjects(`
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
    podTemplates(manifests).map((p) => describeObject(p.owner)),
    ['Deployment.apps/apps/web', 'CronJob.batch/apps/nightly', 'Service.serving.knative.dev/apps/fn'],
  );
});

test('service accounts: declared, run as by pods (default when unnamed), and named by bindings', () => {
  const accounts = serviceAccounts(manifests);
  assert.deepEqual(
    accounts.map((a) => [a.username, a.declared, a.usedBy.map((p) => describeObject(p.owner))]),
    [
      ['system:serviceaccount:apps:default', false, ['Deployment.apps/apps/web']],
      ['system:serviceaccount:apps:quiet', true, ['CronJob.batch/apps/nightly', 'Service.serving.knative.dev/apps/fn']],
      ['system:serviceaccount:ops:robot', false, []],
    ],
  );
});

test("a pod's automountServiceAccountToken wins over its account's, which wins over the default (mount)", () => {
  const accounts = serviceAccounts(manifests);
  const quiet = accounts.find((a) => a.name === 'quiet')!;
  const web = podTemplates(manifests).find((p) => describeObject(p.owner) === 'Deployment.apps/apps/web')!;
  const [nightly, fn] = quiet.usedBy;
  assert.equal(
    mountsToken(
      web,
      accounts.find((a) => a.name === 'default'),
    ),
    true,
  );
  assert.equal(mountsToken(nightly!, quiet), true);
  assert.equal(mountsToken(fn!, quiet), false);
});

test('namespaces are those created and those objects live in', () => {
  assert.deepEqual(namespacesOf(manifests), ['apps']);
});

test('a document that is not a Kubernetes object is refused', () => {
  assert.throws(() => parseObjects('kind: Thing\n'), /not a Kubernetes object/);
  assert.throws(() => parseObjects('a: [\n'), /invalid YAML/);
});
