// Service accounts the platform's pods run as, whether they get a token, and the namespaces involved.
import { groupOf, type KubeObject } from './objects.js';
import { podTemplates, type PodTemplate } from './pods.js';

export interface ServiceAccountRef {
  namespace: string;
  name: string;
  /** Username the API server gives the account's tokens. */
  username: string;
  /** Whether the objects create the account (otherwise it is only referred to, like `default`). */
  declared: boolean;
  /** Pod templates that run as it. */
  usedBy: PodTemplate[];
  /** automountServiceAccountToken on the ServiceAccount object, if declared. */
  automountToken?: boolean;
}

/**
 * Every service account the objects bring into play: those they declare, those their pods run as
 * (`default` where a pod names none), and those their RoleBindings and ClusterRoleBindings name.
 */
export function serviceAccounts(objects: readonly KubeObject[]): ServiceAccountRef[] {
  const accounts = new Map<string, ServiceAccountRef>();
  const ref = (namespace: string, name: string): ServiceAccountRef => {
    const key = `${namespace}/${name}`;
    let account = accounts.get(key);
    if (!account) {
      account = { namespace, name, username: `system:serviceaccount:${namespace}:${name}`, declared: false, usedBy: [] };
      accounts.set(key, account);
    }
    return account;
  };
  for (const object of objects) {
    if (object.kind === 'ServiceAccount' && groupOf(object) === '') {
      const account = ref(object.metadata.namespace ?? 'default', object.metadata.name);
      account.declared = true;
      if (typeof object['automountServiceAccountToken'] === 'boolean') {
        account.automountToken = object['automountServiceAccountToken'];
      }
    }
    if ((object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding') && groupOf(object) === 'rbac.authorization.k8s.io') {
      for (const subject of (object['subjects'] ?? []) as Array<{ kind: string; name: string; namespace?: string }>) {
        if (subject.kind === 'ServiceAccount') ref(subject.namespace ?? object.metadata.namespace ?? 'default', subject.name);
      }
    }
  }
  for (const template of podTemplates(objects)) {
    ref(template.namespace, template.spec.serviceAccountName ?? 'default').usedBy.push(template);
  }
  return [...accounts.values()].sort((a, b) => a.username.localeCompare(b.username));
}

/** Whether pods from this template get a service-account token: the pod's choice wins over the account's. */
export function mountsToken(template: PodTemplate, account: ServiceAccountRef | undefined): boolean {
  return template.spec.automountServiceAccountToken ?? account?.automountToken ?? true;
}

/** The namespaces the objects live in, and those they create. */
export function namespacesOf(objects: readonly KubeObject[]): string[] {
  const names = new Set<string>();
  for (const object of objects) {
    if (object.kind === 'Namespace' && groupOf(object) === '') names.add(object.metadata.name);
    else if (object.metadata.namespace) names.add(object.metadata.namespace);
  }
  return [...names].sort();
}
