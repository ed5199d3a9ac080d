// Where a Service's traffic goes, as kube-proxy decides it: the Service port named by number or name,
// the EndpointSlice port of the same name (which carries the target port the slice controller resolved,
// also for a targetPort given by name), and the endpoints that are ready, or, when none is, those still
// serving while they terminate (kube-proxy's rule since 1.28, which lets a draining pod finish).
// Pure functions over API objects: the proxy, DNS and ingress share them.
import type { V1EndpointSlice, V1Service, V1ServicePort } from '@kubernetes/client-node';

export interface Backend {
  ip: string;
  port: number;
}

/** The Service's port that `port` names: a number matches `port`, a string matches `name`. */
export function findServicePort(service: V1Service, port: number | string): V1ServicePort | undefined {
  const ports = service.spec?.ports ?? [];
  if (typeof port === 'number') return ports.find((p) => p.port === port);
  // A numeric string is how an IntOrString arrives from some writers.
  if (/^\d+$/.test(port)) return ports.find((p) => p.port === Number(port));
  return ports.find((p) => p.name === port);
}

export function isHeadless(service: V1Service): boolean {
  return service.spec?.clusterIP === 'None';
}

/** The IPv4 ClusterIPs of a Service that has them (not headless, not ExternalName). */
export function clusterIPv4s(service: V1Service): string[] {
  if (service.spec?.type === 'ExternalName' || isHeadless(service)) return [];
  const ips = service.spec?.clusterIPs?.length ? service.spec.clusterIPs : service.spec?.clusterIP ? [service.spec.clusterIP] : [];
  return ips.filter(isIPv4);
}

/** The endpoints that serve `servicePort`, ready ones first choice; deduplicated, in a stable order. */
export function backendsFor(servicePort: V1ServicePort, slices: readonly V1EndpointSlice[]): Backend[] {
  const name = servicePort.name ?? '';
  const protocol = servicePort.protocol ?? 'TCP';
  const ready = new Map<string, Backend>();
  const terminating = new Map<string, Backend>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === name && (p.protocol ?? 'TCP') === protocol);
    if (!slicePort) continue;
    const port = slicePort.port ?? fallbackTargetPort(servicePort);
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const conditions = endpoint.conditions ?? {};
      // An unset condition means ready (discovery/v1): only an explicit false excludes.
      const isReady = conditions.ready !== false;
      const servingWhileTerminating = !isReady && conditions.serving === true && conditions.terminating === true;
      if (!isReady && !servingWhileTerminating) continue;
      for (const ip of endpoint.addresses ?? []) {
        if (!isIPv4(ip)) continue;
        const backend = { ip, port };
        (isReady ? ready : terminating).set(`${ip}:${port}`, backend);
      }
    }
  }
  const chosen = ready.size > 0 ? ready : terminating;
  return [...chosen.values()].sort(compareBackends);
}

/** Every address of the Service's endpoints that DNS may hand out for a headless Service. */
export function endpointAddresses(slices: readonly V1EndpointSlice[]): Array<{ ip: string; hostname?: string }> {
  const seen = new Map<string, { ip: string; hostname?: string }>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      for (const ip of endpoint.addresses ?? []) {
        if (!isIPv4(ip) || seen.has(ip)) continue;
        seen.set(ip, endpoint.hostname ? { ip, hostname: endpoint.hostname } : { ip });
      }
    }
  }
  return [...seen.values()].sort((a, b) => compareBackends({ ip: a.ip, port: 0 }, { ip: b.ip, port: 0 }));
}

/**
 * Picks backends in turn: each call to order() starts one further along, and lists the rest after it,
 * so a caller that cannot connect to the first tries the next (kube-proxy's userspace mode did the same).
 */
export class RoundRobin {
  private readonly next = new Map<string, number>();

  order<T>(key: string, backends: readonly T[]): T[] {
    if (backends.length === 0) return [];
    const start = (this.next.get(key) ?? 0) % backends.length;
    this.next.set(key, start + 1);
    return [...backends.slice(start), ...backends.slice(0, start)];
  }

  /** Forgets keys no longer in use, so the map does not grow with every Service ever seen. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.next.keys()) if (!keys.has(key)) this.next.delete(key);
  }
}

function fallbackTargetPort(servicePort: V1ServicePort): number | undefined {
  // A slice port without a number means the Service's own target port, when that is a number.
  const target = servicePort.targetPort;
  if (typeof target === 'number') return target;
  if (target === undefined) return servicePort.port;
  return /^\d+$/.test(target) ? Number(target) : undefined;
}

export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255 && (part === '0' || !part.startsWith('0')));
}

function compareBackends(a: Backend, b: Backend): number {
  const ia = a.ip.split('.').map(Number);
  const ib = b.ip.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (ia[i] !== ib[i]) return ia[i]! - ib[i]!;
  return a.port - b.port;
}
