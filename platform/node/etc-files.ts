// The files the kubelet and the runtime write into a pod's /etc: the managed hosts file (kubelet
// managedHostsFileContent), resolv.conf per dnsPolicy (pkg/kubelet/network/dns), and passwd/group entries so
// a process can name its user. Pure.
import type { V1Pod } from '@kubernetes/client-node';

export interface DnsSettings {
  /** Cluster DNS Service IP (kubelet --cluster-dns). */
  clusterDns: string;
  /** kubelet --cluster-domain. */
  clusterDomain: string;
  /** The node's own resolv.conf, for dnsPolicy Default. */
  hostResolvConf: string;
}

/** spec.hostname, else the pod's name cut to 63 characters (and no trailing '-' or '.'), as the kubelet does. */
export function podHostname(pod: V1Pod): string {
  if (pod.spec?.hostname) return pod.spec.hostname;
  return (pod.metadata?.name ?? '').slice(0, 63).replace(/[-.]+$/, '');
}

export function hostsFile(pod: V1Pod, podIP: string, clusterDomain: string): string {
  const hostname = podHostname(pod);
  const lines = [
    '# Kubernetes-managed hosts file.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  const subdomain = pod.spec?.subdomain;
  if (subdomain) lines.push(`${podIP}\t${hostname}.${subdomain}.${pod.metadata?.namespace}.svc.${clusterDomain}\t${hostname}`);
  else lines.push(`${podIP}\t${hostname}`);
  const aliases = pod.spec?.hostAliases ?? [];
  if (aliases.length > 0) {
    lines.push('', '# Entries added by HostAliases.');
    for (const alias of aliases) lines.push(`${alias.ip}\t${(alias.hostnames ?? []).join('\t')}`);
  }
  return lines.join('\n') + '\n';
}

function parseResolvConf(text: string): { nameservers: string[]; searches: string[]; options: string[] } {
  const result = { nameservers: [] as string[], searches: [] as string[], options: [] as string[] };
  for (const line of text.split('\n')) {
    const [key, ...values] = line.trim().split(/\s+/);
    if (key === 'nameserver' && values[0]) result.nameservers.push(values[0]);
    else if (key === 'search' || key === 'domain') result.searches = values;
    else if (key === 'options') result.options.push(...values);
  }
  return result;
}

/** resolv.conf for the pod's dnsPolicy and dnsConfig. */
export function resolvConf(pod: V1Pod, dns: DnsSettings): string {
  const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst';
  const namespace = pod.metadata?.namespace ?? 'default';
  let nameservers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  if (policy === 'ClusterFirst' || policy === 'ClusterFirstWithHostNet') {
    nameservers = [dns.clusterDns];
    searches = [`${namespace}.svc.${dns.clusterDomain}`, `svc.${dns.clusterDomain}`, dns.clusterDomain];
    options = ['ndots:5'];
  } else if (policy === 'Default') {
    ({ nameservers, searches, options } = parseResolvConf(dns.hostResolvConf));
  }
  const config = pod.spec?.dnsConfig;
  if (config) {
    nameservers = [...new Set([...nameservers, ...(config.nameservers ?? [])])];
    searches = [...new Set([...searches, ...(config.searches ?? [])])];
    const merged = new Map(options.map((o) => [o.split(':')[0]!, o] as [string, string]));
    for (const option of config.options ?? [])
      merged.set(option.name ?? '', option.value !== undefined ? `${option.name}:${option.value}` : (option.name ?? ''));
    options = [...merged.values()].filter(Boolean);
  }
  const lines = [
    ...(searches.length ? [`search ${searches.join(' ')}`] : []),
    ...nameservers.map((n) => `nameserver ${n}`),
    ...(options.length ? [`options ${options.join(' ')}`] : []),
  ];
  return lines.join('\n') + '\n';
}

/** passwd and group with the usual system users and the ones the pod's containers run as. */
export function userFiles(users: ReadonlyArray<{ uid: number; gid: number }>): { passwd: string; group: string } {
  const known = new Map<number, { name: string; gid: number; home: string }>([
    [0, { name: 'root', gid: 0, home: '/root' }],
    [1000, { name: 'node', gid: 1000, home: '/home/node' }],
    [65532, { name: 'nonroot', gid: 65532, home: '/home/nonroot' }],
    [65534, { name: 'nobody', gid: 65534, home: '/nonexistent' }],
  ]);
  for (const user of users) if (!known.has(user.uid)) known.set(user.uid, { name: `user${user.uid}`, gid: user.gid, home: '/' });
  const groups = new Map<number, string>([...known.values()].map((u) => [u.gid, u.name]));
  for (const user of users) if (!groups.has(user.gid)) groups.set(user.gid, `group${user.gid}`);
  const passwd = [...known].map(([uid, u]) => `${u.name}:x:${uid}:${u.gid}::${u.home}:/sbin/nologin`).join('\n') + '\n';
  const group = [...groups].map(([gid, name]) => `${name}:x:${gid}:`).join('\n') + '\n';
  return { passwd, group };
}
