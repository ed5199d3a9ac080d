// What the network components may do, and nothing more: read Services and EndpointSlices (kube-proxy's
// and CoreDNS's needs), read Knative's Ingresses and write their status (Kourier's). A node's own
// identity cannot do this (the Node authorizer grants kubelets neither EndpointSlices nor Knative's
// Ingresses), so whoever hosts the components gives them an identity bound to this role, as a cluster
// gives kube-proxy and Kourier service accounts of their own.
import type { V1ClusterRole, V1ClusterRoleBinding, RbacV1Subject } from '@kubernetes/client-node';

export const networkClusterRoleName = 'promsnap:network';

export const networkClusterRole: V1ClusterRole = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: networkClusterRoleName, labels: { 'app.kubernetes.io/name': 'network', 'app.kubernetes.io/part-of': 'promsnap' } },
  rules: [
    { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['networking.internal.knative.dev'], resources: ['ingresses'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['networking.internal.knative.dev'], resources: ['ingresses/status'], verbs: ['update', 'patch'] },
  ],
};

/** Binds the role to one identity: a user (a static token) or a ServiceAccount. */
export function networkClusterRoleBinding(subject: RbacV1Subject): V1ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: networkClusterRoleName, labels: { 'app.kubernetes.io/name': 'network', 'app.kubernetes.io/part-of': 'promsnap' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: networkClusterRoleName },
    subjects: [subject],
  };
}
