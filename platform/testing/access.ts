// Asking the real RBAC authorizer what an account may do, through @kubernetes/client-node:
// SubjectAccessReview for one action ("can this account list pods?"), and SelfSubjectRulesReview,
// impersonating the account, for everything it may do in a namespace (so "nothing else" is checked
// against the complete list, not against a sample of guesses).
import { AuthorizationV1Api, KubeConfig, setHeaderOptions, type V1ResourceRule, type V1NonResourceRule } from '@kubernetes/client-node';

export interface Subject {
  username: string;
  groups: string[];
}

/** The identity a service account's token carries: its username and the two groups every SA is in. */
export function serviceAccountSubject(namespace: string, name: string): Subject {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

export interface ResourceAccess {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** Omitted: in every namespace at once (what a cluster-wide list or watch asks for), or cluster-scoped. */
  namespace?: string;
}

export interface NonResourceAccess {
  verb: string;
  path: string;
}

export type Access = ResourceAccess | NonResourceAccess;

export function isNonResource(access: Access): access is NonResourceAccess {
  return 'path' in access;
}

/** Reads like kubectl auth can-i: `list pods.discovery.k8s.io/status -n promsnap`, `get /metrics`. */
export function describeAccess(access: Access): string {
  if (isNonResource(access)) return `${access.verb} ${access.path}`;
  const resource = `${access.resource}${access.group ? `.${access.group}` : ''}${access.subresource ? `/${access.subresource}` : ''}`;
  return `${access.verb} ${resource} ${access.namespace ? `-n ${access.namespace}` : '(all namespaces)'}`;
}

export interface Rules {
  resourceRules: V1ResourceRule[];
  nonResourceRules: V1NonResourceRule[];
}

export class AccessReviewer {
  private readonly api: AuthorizationV1Api;

  constructor(kubeconfigPath: string) {
    const config = new KubeConfig();
    config.loadFromFile(kubeconfigPath);
    this.api = config.makeApiClient(AuthorizationV1Api);
  }

  /** SubjectAccessReview: whether the authorizer allows this subject this one action. */
  async can(subject: Subject, access: Access): Promise<boolean> {
    const review = await this.api.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: subject.username,
          groups: subject.groups,
          ...(isNonResource(access)
            ? { nonResourceAttributes: { verb: access.verb, path: access.path } }
            : {
                resourceAttributes: {
                  verb: access.verb,
                  group: access.group,
                  resource: access.resource,
                  ...(access.subresource ? { subresource: access.subresource } : {}),
                  ...(access.namespace ? { namespace: access.namespace } : {}),
                },
              }),
        },
      },
    });
    if (review.status?.evaluationError) throw new Error(`${describeAccess(access)}: ${review.status.evaluationError}`);
    return review.status?.allowed === true;
  }

  /**
   * Everything `username` may do in `namespace` (cluster-wide grants included), as the API server
   * resolves it while impersonating the user; a service-account username gets its groups added by the
   * server. Throws if the answer is incomplete, since "nothing else" could not be judged from it.
   */
  async rules(username: string, namespace: string): Promise<Rules> {
    const review = await this.api.createSelfSubjectRulesReview(
      { body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace } } },
      setHeaderOptions('Impersonate-User', username),
    );
    const status = review.status;
    if (!status || status.incomplete) {
      throw new Error(`rules of ${username} in ${namespace} are incomplete: ${status?.evaluationError ?? 'no status'}`);
    }
    return { resourceRules: status.resourceRules, nonResourceRules: status.nonResourceRules };
  }
}

/** One rule per verb, group, resource (and name): rules compare and subtract without set algebra. */
export interface FlatRule {
  verb: string;
  group: string;
  resource: string;
  resourceName?: string;
}

export function flattenResourceRules(rules: V1ResourceRule[]): FlatRule[] {
  const flat = new Map<string, FlatRule>();
  for (const rule of rules) {
    for (const verb of rule.verbs) {
      for (const group of rule.apiGroups ?? ['']) {
        for (const resource of rule.resources ?? []) {
          const names = rule.resourceNames?.length ? rule.resourceNames : [undefined];
          for (const resourceName of names) {
            const entry: FlatRule = { verb, group, resource, ...(resourceName ? { resourceName } : {}) };
            flat.set(JSON.stringify(entry), entry);
          }
        }
      }
    }
  }
  return [...flat.values()];
}

export function flattenNonResourceRules(rules: V1NonResourceRule[]): NonResourceAccess[] {
  const flat = new Map<string, NonResourceAccess>();
  for (const rule of rules) {
    for (const verb of rule.verbs) {
      for (const path of rule.nonResourceURLs ?? []) flat.set(`${verb} ${path}`, { verb, path });
    }
  }
  return [...flat.values()];
}

/** What `rules` grants beyond `baseline` (what every authenticated user may do). */
export function beyondBaseline(rules: Rules, baseline: Rules): { resource: FlatRule[]; nonResource: NonResourceAccess[] } {
  const base = new Set(flattenResourceRules(baseline.resourceRules).map((r) => JSON.stringify(r)));
  const baseNonResource = new Set(flattenNonResourceRules(baseline.nonResourceRules).map((r) => `${r.verb} ${r.path}`));
  return {
    resource: flattenResourceRules(rules.resourceRules).filter((r) => !base.has(JSON.stringify(r))),
    nonResource: flattenNonResourceRules(rules.nonResourceRules).filter((r) => !baseNonResource.has(`${r.verb} ${r.path}`)),
  };
}

export function describeRule(rule: FlatRule): string {
  return `${rule.verb} ${rule.resource}${rule.group ? `.${rule.group}` : ''}${rule.resourceName ? ` ${rule.resourceName}` : ''}`;
}
