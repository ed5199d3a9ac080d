// The node process plays more parts than a kubelet: the cluster's scheduler (binding pending pods), its
// volume provisioner, and host of the network parts (kube-proxy's, CoreDNS's, the KIngress's). The
// kubelet part runs as system:node:<name>, which the Node authorizer and NodeRestriction keep to what a
// kubelet may do (a node may not bind pods or create volumes); the other parts run as a service account
// of their own, kube-system/promsnap-local-node, with these rights and platform/network's role. setup.ts
// applies them and mints the account's kubeconfig.
import type { V1ClusterRole, V1ClusterRoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import { networkClusterRole, networkClusterRoleBinding } from '../network/rbac.js';

export const controllersAccount = { namespace: 'kube-system', name: 'promsnap-local-node' };

const labels = { 'app.kubernetes.io/part-of': 'promsnap', 'app.kubernetes.io/component': 'local-node' };

/** The account, its role and binding, and platform/network's own role bound to the same account. */
export function nodeControllerObjects(): [V1ServiceAccount, V1ClusterRole, V1ClusterRoleBinding, V1ClusterRole, V1ClusterRoleBinding] {
  const name = 'promsnap:local-node-controllers';
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { ...controllersAccount, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name, labels },
      rules: [
        // the scheduler's part: pending pods, their binding, the Scheduled event
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['pods/binding'], verbs: ['create'] },
        { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch', 'update'] },
        // the provisioner's part
        { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', ...controllersAccount }],
    },
    // kube-proxy's, CoreDNS's and the ingress's parts (platform/network, hosted by the node): its own role.
    networkClusterRole,
    networkClusterRoleBinding({ kind: 'ServiceAccount', ...controllersAccount }),
  ];
}
