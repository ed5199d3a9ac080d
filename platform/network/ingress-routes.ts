// Knative's KIngress (networking.internal.knative.dev/v1alpha1 Ingress, knative.dev/networking
// pkg/apis/networking/v1alpha1/ingress_types.go) turned into a route table, with the semantics Kourier
// gives it: every rule is served in-cluster, ExternalIP rules also on the public listener; a Host matches
// with or without a port; paths are prefixes, longer first; header matches are exact; splits are chosen
// by percent; appendHeaders (the path's, then the split's) replace what the client sent. An Ingress
// naming a host an older Ingress already serves is rejected whole (Kourier's DomainConflict). Pure.

export const ingressClassAnnotation = 'networking.knative.dev/ingress.class';

export type Visibility = 'ExternalIP' | 'ClusterLocal';

export interface KIngressSplit {
  serviceNamespace: string;
  serviceName: string;
  servicePort: number | string;
  percent?: number;
  appendHeaders?: Record<string, string>;
}

export interface KIngressPath {
  path?: string;
  rewriteHost?: string;
  headers?: Record<string, { exact?: string }>;
  splits: KIngressSplit[];
  appendHeaders?: Record<string, string>;
}

export interface KIngressRule {
  hosts?: string[];
  visibility?: Visibility;
  http?: { paths?: KIngressPath[] };
}

export interface LoadBalancerIngress {
  ip?: string;
  domain?: string;
  domainInternal?: string;
  meshOnly?: boolean;
}

export interface KnativeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  severity?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface KIngressStatus {
  observedGeneration?: number;
  conditions?: KnativeCondition[];
  publicLoadBalancer?: { ingress?: LoadBalancerIngress[] };
  privateLoadBalancer?: { ingress?: LoadBalancerIngress[] };
}

export interface KIngress {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
  spec: { rules?: KIngressRule[]; tls?: unknown[]; httpOption?: string };
  status?: KIngressStatus;
}

/** Which listener a request came in on: the public one (the host's forward) or the in-cluster one. */
export type ListenerKind = 'public' | 'internal';

export interface RouteSplit {
  namespace: string;
  name: string;
  port: number | string;
  percent: number;
  /** The path's appendHeaders overlaid with the split's, names lower-cased. */
  setHeaders: Record<string, string>;
}

export interface Route {
  /** namespace/name of the Ingress. */
  ingress: string;
  /** The prefix; '/' when the Ingress gave none. */
  path: string;
  /** Header name (lower-case) -> the exact value it must have. */
  headers: Array<[string, string]>;
  rewriteHost?: string;
  splits: RouteSplit[];
}

interface HostRoutes {
  exact: Map<string, Route[]>;
  /** '*.example.com' -> routes, longest suffix first. */
  wildcard: Array<{ suffix: string; routes: Route[] }>;
  /** Rules without hosts match every host. */
  any: Route[];
}

export interface RouteTable {
  public: HostRoutes;
  internal: HostRoutes;
}

export interface RouteTableResult {
  table: RouteTable;
  /** Keys (namespace/name) of Ingresses rejected, with why. */
  rejected: Map<string, string>;
}

export function ingressKey(ingress: { metadata: { namespace: string; name: string } }): string {
  return `${ingress.metadata.namespace}/${ingress.metadata.name}`;
}

export function hasClass(ingress: KIngress, ingressClass: string): boolean {
  return ingress.metadata.annotations?.[ingressClassAnnotation] === ingressClass;
}

/** Hosts an Ingress serves, lower-cased; '*' for a rule without hosts. */
export function ingressHosts(ingress: KIngress): Set<string> {
  const hosts = new Set<string>();
  for (const rule of ingress.spec.rules ?? []) {
    const ruleHosts = rule.hosts?.length ? rule.hosts : ['*'];
    for (const host of ruleHosts) hosts.add(host.toLowerCase());
  }
  return hosts;
}

/** Builds the table from the Ingresses of our class; older Ingresses win a host both name. */
export function buildRouteTable(ingresses: readonly KIngress[]): RouteTableResult {
  const table: RouteTable = { public: emptyHosts(), internal: emptyHosts() };
  const rejected = new Map<string, string>();
  const claimed = new Map<string, string>();
  for (const ingress of [...ingresses].sort(byAge)) {
    const key = ingressKey(ingress);
    const hosts = ingressHosts(ingress);
    const taken = [...hosts].filter((host) => claimed.has(host) && claimed.get(host) !== key);
    if (taken.length > 0) {
      rejected.set(key, `ingress has a conflicting domain with another ingress: ${taken.map((host) => `${host} (${claimed.get(host)})`).join(', ')}`);
      continue;
    }
    for (const host of hosts) claimed.set(host, key);
    for (const rule of ingress.spec.rules ?? []) {
      const routes = (rule.http?.paths ?? []).map((path) => toRoute(key, path)).filter((route) => route.splits.length > 0);
      if (routes.length === 0) continue;
      const hostsOfRule = rule.hosts?.length ? rule.hosts : ['*'];
      const visibility = rule.visibility ?? 'ExternalIP';
      for (const host of hostsOfRule) {
        addRoutes(table.internal, host, routes);
        if (visibility === 'ExternalIP') addRoutes(table.public, host, routes);
      }
    }
  }
  for (const hosts of [table.public, table.internal]) {
    for (const routes of [...hosts.exact.values(), ...hosts.wildcard.map((w) => w.routes), hosts.any]) sortBySpecificity(routes);
    hosts.wildcard.sort((a, b) => b.suffix.length - a.suffix.length);
  }
  return { table, rejected };
}

/** The route a request takes, or undefined (the ingress answers 404, as Envoy does). */
export function matchRoute(
  table: RouteTable,
  listener: ListenerKind,
  hostHeader: string | undefined,
  url: string,
  header: (name: string) => string | undefined,
): Route | undefined {
  const hosts = table[listener];
  const host = hostWithoutPort(hostHeader ?? '');
  const candidates = hosts.exact.get(host) ?? hosts.wildcard.find((w) => host.endsWith(w.suffix))?.routes ?? hosts.any;
  const path = pathOf(url);
  return candidates.find((route) => path.startsWith(route.path) && route.headers.every(([name, value]) => header(name) === value));
}

/** Chooses a split by percent; random() in [0, 1). Splits at 0 % are never chosen. */
export function chooseSplit(route: Route, random: () => number = Math.random): RouteSplit | undefined {
  const total = route.splits.reduce((sum, split) => sum + split.percent, 0);
  if (total <= 0) return undefined;
  let point = random() * total;
  for (const split of route.splits) {
    if (split.percent <= 0) continue;
    if (point < split.percent) return split;
    point -= split.percent;
  }
  return route.splits.findLast((split) => split.percent > 0);
}

/** 'Example.com:8080' -> 'example.com'; '[::1]:80' -> '[::1]'. */
export function hostWithoutPort(host: string): string {
  const lower = host.trim().toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end < 0 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.lastIndexOf(':');
  return colon < 0 ? lower : lower.slice(0, colon);
}

function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  return end < 0 ? url : url.slice(0, end);
}

function toRoute(ingress: string, path: KIngressPath): Route {
  const pathHeaders = lowerKeys(path.appendHeaders);
  // One split defaults to 100 % (the Ingress's SetDefaults); otherwise an unset percent is 0.
  const splits = path.splits ?? [];
  return {
    ingress,
    path: path.path || '/',
    headers: Object.entries(path.headers ?? {}).map(([name, match]) => [name.toLowerCase(), match.exact ?? ''] as [string, string]),
    ...(path.rewriteHost ? { rewriteHost: path.rewriteHost } : {}),
    splits: splits.map((split) => ({
      namespace: split.serviceNamespace,
      name: split.serviceName,
      port: split.servicePort,
      percent: splits.length === 1 && !split.percent ? 100 : (split.percent ?? 0),
      setHeaders: { ...pathHeaders, ...lowerKeys(split.appendHeaders) },
    })),
  };
}

function addRoutes(hosts: HostRoutes, host: string, routes: Route[]): void {
  const lower = host.toLowerCase();
  if (lower === '*') {
    hosts.any.push(...routes);
  } else if (lower.startsWith('*.')) {
    const suffix = lower.slice(1);
    const existing = hosts.wildcard.find((w) => w.suffix === suffix);
    if (existing) existing.routes.push(...routes);
    else hosts.wildcard.push({ suffix, routes: [...routes] });
  } else {
    const existing = hosts.exact.get(lower);
    if (existing) existing.push(...routes);
    else hosts.exact.set(lower, [...routes]);
  }
}

function sortBySpecificity(routes: Route[]): void {
  // Stable: among equal prefixes the Ingress's order (header-matched tag routes first) stays.
  routes.sort((a, b) => b.path.length - a.path.length);
}

function emptyHosts(): HostRoutes {
  return { exact: new Map(), wildcard: [], any: [] };
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
}

function byAge(a: KIngress, b: KIngress): number {
  const time = (ingress: KIngress) => {
    // A string on the wire (RFC 3339); kept out of the type so both a watched object and a parsed one fit.
    const created = (ingress.metadata as { creationTimestamp?: unknown }).creationTimestamp;
    return typeof created === 'string' || created instanceof Date ? new Date(created).getTime() : 0;
  };
  return time(a) - time(b) || ingressKey(a).localeCompare(ingressKey(b));
}
