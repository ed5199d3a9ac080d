// The cluster's names, as Kubernetes' DNS specification (and CoreDNS's kubernetes plugin) defines them:
//   <service>.<ns>.svc.<zone>              A: the ClusterIP; headless: its ready endpoints;
//                                          ExternalName: CNAME, followed inside the zone
//   <hostname>.<service>.<ns>.svc.<zone>   A: a headless Service's endpoint by hostname (or a-b-c-d)
//   <a-b-c-d>.<ns>.pod.<zone>              A: a.b.c.d (CoreDNS's "pods insecure", kubeadm's default)
// Everything else is NXDOMAIN: there is no upstream, nothing in the local cluster needs the internet and
// this makes that visible. A name that exists answers NOERROR with no records for other types (NODATA),
// with the zone's SOA, so an AAAA query never hides an A record. Pure: the server feeds it a catalog.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { clusterIPv4s, endpointAddresses, isHeadless, isIPv4 } from './endpoints.js';
import { RecordClass, RecordType, Rcode, type Question, type ResourceRecord, type Soa } from './dns-wire.js';

export interface ZoneSource {
  service(namespace: string, name: string): V1Service | undefined;
  endpointSlices(namespace: string, serviceName: string): readonly V1EndpointSlice[];
}

export interface ZoneOptions {
  /** cluster.local */
  domain: string;
  /** TTL of every answer and of negative answers; CoreDNS's kubernetes plugin uses 5 s. */
  ttl: number;
}

export interface ZoneAnswer {
  rcode: number;
  /** Set for names inside the zone: we are its only server. */
  authoritative: boolean;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
}

/** CNAMEs followed inside the zone before giving up (an ExternalName pointing at another). */
const maxChain = 8;

export function answer(question: Question, source: ZoneSource, options: ZoneOptions): ZoneAnswer {
  const domain = options.domain.toLowerCase().replace(/\.$/, '');
  const negative = (rcode: number): ZoneAnswer => ({ rcode, authoritative: true, answers: [], authorities: [soaRecord(domain, options.ttl)] });
  if (question.class !== RecordClass.IN && question.class !== RecordClass.ANY)
    return { rcode: Rcode.REFUSED, authoritative: false, answers: [], authorities: [] };

  const answers: ResourceRecord[] = [];
  let name = question.name;
  for (let step = 0; step < maxChain; step++) {
    const relative = inZone(name, domain);
    if (relative === undefined) {
      // Outside the zone: nothing to say. After a CNAME out of the zone, the CNAME is the answer.
      if (step > 0) return { rcode: Rcode.NOERROR, authoritative: true, answers, authorities: [] };
      return { rcode: Rcode.NXDOMAIN, authoritative: false, answers: [], authorities: [] };
    }
    const found = lookup(relative, source);
    if (found.kind === 'nxdomain')
      return step === 0 ? negative(Rcode.NXDOMAIN) : { rcode: Rcode.NXDOMAIN, authoritative: true, answers, authorities: [soaRecord(domain, options.ttl)] };
    if (found.kind === 'cname') {
      answers.push({ name, type: RecordType.CNAME, class: RecordClass.IN, ttl: options.ttl, data: { cname: found.target } });
      if (question.type === RecordType.CNAME) return { rcode: Rcode.NOERROR, authoritative: true, answers, authorities: [] };
      name = found.target;
      continue;
    }
    if (relative === '' && question.type === RecordType.SOA) {
      return { rcode: Rcode.NOERROR, authoritative: true, answers: [soaRecord(domain, options.ttl)], authorities: [] };
    }
    const wantsA = question.type === RecordType.A || question.type === RecordType.ANY;
    if (wantsA && found.addresses.length > 0) {
      for (const ip of found.addresses) answers.push({ name, type: RecordType.A, class: RecordClass.IN, ttl: options.ttl, data: { a: ip } });
      return { rcode: Rcode.NOERROR, authoritative: true, answers, authorities: [] };
    }
    return { rcode: Rcode.NOERROR, authoritative: true, answers, authorities: [soaRecord(domain, options.ttl)] };
  }
  return { rcode: Rcode.SERVFAIL, authoritative: true, answers: [], authorities: [] };
}

type Lookup = { kind: 'nxdomain' } | { kind: 'cname'; target: string } | { kind: 'exists'; addresses: string[] };

/** Resolves a name relative to the zone ('' is the zone itself), labels lower-cased. */
function lookup(relative: string, source: ZoneSource): Lookup {
  const labels = relative === '' ? [] : relative.split('.');
  const exists = (addresses: string[] = []): Lookup => ({ kind: 'exists', addresses });
  const nxdomain: Lookup = { kind: 'nxdomain' };
  if (labels.length === 0) return exists();
  const kind = labels[labels.length - 1];
  const rest = labels.slice(0, -1);
  if (kind === 'svc') {
    if (rest.length === 0) return exists();
    // A namespace has no records of its own (namespaces are not watched: every one answers NODATA).
    if (rest.length === 1) return exists();
    if (rest.length === 2) {
      const [serviceName, namespace] = rest as [string, string];
      const service = source.service(namespace, serviceName);
      if (!service) return nxdomain;
      if (service.spec?.type === 'ExternalName') {
        const target = service.spec.externalName?.toLowerCase().replace(/\.$/, '');
        return target ? { kind: 'cname', target } : nxdomain;
      }
      if (isHeadless(service)) return exists(endpointAddresses(source.endpointSlices(namespace, serviceName)).map((e) => e.ip));
      return exists(clusterIPv4s(service));
    }
    if (rest.length === 3) {
      const [hostname, serviceName, namespace] = rest as [string, string, string];
      const service = source.service(namespace, serviceName);
      if (!service || !isHeadless(service)) return nxdomain;
      const matching = endpointAddresses(source.endpointSlices(namespace, serviceName)).filter(
        (e) => (e.hostname ?? e.ip.replaceAll('.', '-')).toLowerCase() === hostname,
      );
      return matching.length > 0 ? exists(matching.map((e) => e.ip)) : nxdomain;
    }
    return nxdomain;
  }
  if (kind === 'pod') {
    if (rest.length === 0) return exists();
    if (rest.length === 1) return exists();
    if (rest.length === 2) {
      const ip = rest[0]!.replaceAll('-', '.');
      return isIPv4(ip) ? exists([ip]) : nxdomain;
    }
    return nxdomain;
  }
  return nxdomain;
}

/** The name relative to the zone ('' for the apex), or undefined when outside it. Lower-cased. */
function inZone(name: string, domain: string): string | undefined {
  const lower = name.toLowerCase().replace(/\.$/, '');
  if (lower === domain) return '';
  return lower.endsWith(`.${domain}`) ? lower.slice(0, -(domain.length + 1)) : undefined;
}

function soaRecord(domain: string, ttl: number): ResourceRecord {
  // CoreDNS's SOA for the kubernetes zone; minimum = negative-caching TTL (RFC 2308).
  const soa: Soa = { mname: `ns.dns.${domain}`, rname: `hostmaster.${domain}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl };
  return { name: domain, type: RecordType.SOA, class: RecordClass.IN, ttl, data: { soa } };
}
