// The status a KIngress implementation owes Knative (knative.dev/networking ingress_lifecycle.go, as
// net-kourier's reconciler writes it): observedGeneration; NetworkConfigured once the routes are in
// place; LoadBalancerReady, with the public and private load balancers' domainInternal, once traffic
// can flow, and False with DomainConflict when another Ingress holds a host; Ready from the two, as
// Knative's "living" condition set computes it. Route copies these into its own conditions and turns its
// placeholder Service into an ExternalName pointing at the private domainInternal. Pure.
import type { KIngress, KIngressStatus, KnativeCondition, LoadBalancerIngress } from './ingress-routes.js';

export interface LoadBalancerDomains {
  /** Where ExternalIP traffic enters (the public load balancer's domainInternal). */
  public: string;
  /** Where cluster-local traffic enters; Route's placeholder Service points here. */
  private: string;
}

export interface IngressOutcome {
  /** Set when the Ingress was rejected (another holds one of its hosts). */
  rejected?: string;
  /** Backends (namespace/name:port) that have no ready endpoint yet; empty when traffic can flow. */
  waitingFor: string[];
}

const dependents = ['LoadBalancerReady', 'NetworkConfigured'] as const;

export function desiredStatus(ingress: KIngress, outcome: IngressOutcome, domains: LoadBalancerDomains, now: Date): KIngressStatus {
  const previous = ingress.status ?? {};
  const conditions = new Map<string, KnativeCondition>((previous.conditions ?? []).map((c) => [c.type, c]));
  const set = (type: string, status: KnativeCondition['status'], reason?: string, message?: string) => {
    const before = conditions.get(type);
    const changed = !before || before.status !== status;
    conditions.set(type, {
      type,
      status,
      lastTransitionTime: changed || !before.lastTransitionTime ? volatileTime(now) : before.lastTransitionTime,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    });
  };
  // Knative initialises every condition of the set to Unknown the first time it sees an object.
  for (const type of [...dependents, 'Ready']) if (!conditions.has(type)) set(type, 'Unknown');

  let loadBalancers: Pick<KIngressStatus, 'publicLoadBalancer' | 'privateLoadBalancer'> = {
    ...(previous.publicLoadBalancer ? { publicLoadBalancer: previous.publicLoadBalancer } : {}),
    ...(previous.privateLoadBalancer ? { privateLoadBalancer: previous.privateLoadBalancer } : {}),
  };
  if (outcome.rejected !== undefined) {
    set('LoadBalancerReady', 'False', 'DomainConflict', `Ingress rejected: ${outcome.rejected}`);
  } else {
    set('NetworkConfigured', 'True');
    // Once ready at this generation, stays so (Kourier probes only an Ingress that is not yet ready).
    const readyNow = previous.observedGeneration === ingress.metadata.generation && isTrue(conditions.get('Ready')) && hasDomains(previous, domains);
    if (!readyNow) {
      if (outcome.waitingFor.length === 0) {
        set('LoadBalancerReady', 'True');
        loadBalancers = {
          publicLoadBalancer: { ingress: [{ domainInternal: domains.public }] },
          privateLoadBalancer: { ingress: [{ domainInternal: domains.private }] },
        };
      } else {
        set('LoadBalancerReady', 'Unknown', 'Uninitialized', `Waiting for load balancer to be ready: no ready endpoints for ${outcome.waitingFor.join(', ')}`);
      }
    }
  }

  const failed = dependents.map((type) => conditions.get(type)!).find((c) => c.status === 'False');
  const unknown = dependents.map((type) => conditions.get(type)!).find((c) => c.status === 'Unknown');
  if (failed) set('Ready', 'False', failed.reason, failed.message);
  else if (unknown) set('Ready', 'Unknown', unknown.reason, unknown.message);
  else set('Ready', 'True');

  return {
    ...(ingress.metadata.generation !== undefined ? { observedGeneration: ingress.metadata.generation } : {}),
    // Knative keeps conditions sorted by type.
    conditions: [...conditions.values()].sort((a, b) => a.type.localeCompare(b.type)),
    ...loadBalancers,
  };
}

/** Whether writing `desired` would change what is stored (transition times aside). */
export function statusDiffers(current: KIngressStatus | undefined, desired: KIngressStatus): boolean {
  const strip = (status: KIngressStatus | undefined) =>
    JSON.stringify({
      observedGeneration: status?.observedGeneration,
      conditions: (status?.conditions ?? []).map(({ lastTransitionTime: _time, ...rest }) => sortKeys(rest)),
      publicLoadBalancer: normaliseLb(status?.publicLoadBalancer),
      privateLoadBalancer: normaliseLb(status?.privateLoadBalancer),
    });
  return strip(current) !== strip(desired);
}

export function isIngressReady(ingress: KIngress): boolean {
  return ingress.status?.observedGeneration === ingress.metadata.generation && isTrue(ingress.status?.conditions?.find((c) => c.type === 'Ready'));
}

function isTrue(condition: KnativeCondition | undefined): boolean {
  return condition?.status === 'True';
}

function hasDomains(status: KIngressStatus, domains: LoadBalancerDomains): boolean {
  return (
    status.publicLoadBalancer?.ingress?.[0]?.domainInternal === domains.public && status.privateLoadBalancer?.ingress?.[0]?.domainInternal === domains.private
  );
}

function normaliseLb(lb: { ingress?: LoadBalancerIngress[] } | undefined): unknown {
  return lb?.ingress?.map((entry) => sortKeys(entry as Record<string, unknown>)) ?? null;
}

function sortKeys(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}

/** Knative's VolatileTime: RFC 3339 to the second. */
function volatileTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
