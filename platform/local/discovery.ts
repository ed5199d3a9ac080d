// Kubernetes service discovery, stood in for by Prometheus's http_sd. The runner serves the target
// groups Prometheus's kubernetes_sd would build for the local processes (same roles, same
// __meta_kubernetes_* labels, built as Prometheus v3.16 discovery/kubernetes builds them), and rewrites
// each kubernetes_sd_configs entry of the manifests' prometheus.yml into an http_sd_configs entry
// pointing here; the jobs' relabel rules are left untouched, so they decide what is scraped and how
// it is labelled, as in a cluster.
//
// The one liberty: several local pods share 127.0.0.1, so each serves its container ports on local
// ports; a pod is announced with those local port numbers, and a pod annotation whose value is one of
// its container ports (prometheus.io/port: "8080") is announced with the local port too.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { LocalNetwork } from './addresses.js';
import { localPortOf, serviceSpec, type KubeObject, type LocalPod } from './workloads.js';

export type Role = 'pod' | 'endpoints' | 'endpointslice' | 'service' | 'node' | 'ingress';
export type Labels = Record<string, string>;

/** One http_sd target group, as Prometheus reads it. */
export interface TargetGroup {
  targets: string[];
  labels: Labels;
}

/** Roles whose objects exist locally; node and ingress have nothing to announce. */
export const localRoles: readonly Role[] = ['pod', 'endpoints', 'endpointslice', 'service'];

const meta = '__meta_kubernetes_';

/** Prometheus's strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes `_`. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** addObjectMetaLabels: <role>_name, <role>_label_*, _labelpresent_*, _annotation_*, _annotationpresent_*. */
function objectMetaLabels(role: string, name: string, labels: Labels = {}, annotations: Labels = {}): Labels {
  const out: Labels = { [`${meta}${role}_name`]: name };
  for (const [key, value] of Object.entries(labels)) {
    out[`${meta}${role}_label_${sanitizeLabelName(key)}`] = value;
    out[`${meta}${role}_labelpresent_${sanitizeLabelName(key)}`] = 'true';
  }
  for (const [key, value] of Object.entries(annotations)) {
    out[`${meta}${role}_annotation_${sanitizeLabelName(key)}`] = value;
    out[`${meta}${role}_annotationpresent_${sanitizeLabelName(key)}`] = 'true';
  }
  return out;
}

/** A pod's container ports and annotations as announced: container ports replaced by local ports. */
export function announcedPod(pod: LocalPod) {
  const local = (port: number) => pod.ports.get(port) ?? port;
  const containers = pod.template.containers.map((c) => ({
    ...c,
    ports: c.ports.map((p) => ({ ...p, containerPort: local(p.containerPort) })),
  }));
  const declared = new Set(pod.template.containers.flatMap((c) => c.ports.map((p) => String(p.containerPort))));
  const annotations = Object.fromEntries(
    Object.entries(pod.template.annotations).map(([key, value]) => [key, /port/i.test(key) && declared.has(value) ? String(local(Number(value))) : value]),
  );
  return { containers, annotations };
}

/** podLabels(): the labels every target of a pod carries (role pod, and pod-backed endpoints). */
export function podLabels(pod: LocalPod): Labels {
  const ready = pod.ready();
  return {
    [`${meta}pod_ip`]: pod.host,
    [`${meta}pod_ready`]: String(ready),
    [`${meta}pod_phase`]: pod.running() ? 'Running' : 'Pending',
    [`${meta}pod_node_name`]: os.hostname(),
    [`${meta}pod_host_ip`]: pod.host,
    [`${meta}pod_uid`]: pod.uid,
    ...objectMetaLabels('pod', pod.name, pod.template.labels, announcedPod(pod).annotations),
    [`${meta}pod_controller_kind`]: pod.template.controller.kind,
    [`${meta}pod_controller_name`]: pod.template.controller.name,
  };
}

function containerLabels(container: { name: string; image: string; init: boolean }, port?: { name?: string; containerPort: number; protocol: string }): Labels {
  const out: Labels = {
    [`${meta}pod_container_name`]: container.name,
    [`${meta}pod_container_image`]: container.image,
    [`${meta}pod_container_init`]: String(container.init),
  };
  if (port) {
    out[`${meta}pod_container_port_name`] = port.name ?? '';
    out[`${meta}pod_container_port_number`] = String(port.containerPort);
    out[`${meta}pod_container_port_protocol`] = port.protocol;
  }
  return out;
}

/** Role pod: one group per pod, one target per container port (a container without ports: one, no port). */
export function podTargetGroups(pods: LocalPod[]): TargetGroup[] {
  return pods
    .map((pod) => {
      const { containers } = announcedPod(pod);
      // Prometheus lists regular containers first, then init containers.
      const ordered = [...containers.filter((c) => !c.init), ...containers.filter((c) => c.init)];
      const targets: Labels[] = [];
      for (const container of ordered) {
        if (container.ports.length === 0) {
          targets.push({ __address__: pod.host, ...containerLabels(container) });
          continue;
        }
        for (const port of container.ports) {
          targets.push({ __address__: `${pod.host}:${port.containerPort}`, ...containerLabels(container, port) });
        }
      }
      return group(targets, { ...podLabels(pod), [`${meta}namespace`]: pod.template.namespace });
    })
    .flat();
}

/**
 * serviceLabels(): namespace and the Service's name, labels and annotations. An annotation naming one
 * of the Service's ports (prometheus.io/port: "9000") is announced as the local port that Service port
 * reaches on `pod`, as pod annotations are.
 */
function serviceLabels(service: KubeObject, pod?: LocalPod): Labels {
  const ports = serviceSpec(service).ports ?? [];
  const annotations = Object.fromEntries(
    Object.entries(service.metadata.annotations ?? {}).map(([key, value]) => {
      const servicePort = /port/i.test(key) ? ports.find((p) => String(p.port) === value) : undefined;
      const local = servicePort && pod ? localPortOf(pod, servicePort.targetPort ?? servicePort.port) : undefined;
      return [key, local === undefined ? value : String(local)];
    }),
  );
  return {
    [`${meta}namespace`]: service.metadata.namespace ?? 'default',
    ...objectMetaLabels('service', service.metadata.name, service.metadata.labels, annotations),
  };
}

interface EndpointPort {
  name: string;
  port: number;
  protocol: string;
  /** The container port (manifest number) it reaches on each pod. */
  containerPort: number;
}

/** The Service's ports as its Endpoints controller resolves them for one pod (targetPort by number or name). */
function endpointPorts(service: KubeObject, pod: LocalPod): EndpointPort[] {
  const out: EndpointPort[] = [];
  for (const p of serviceSpec(service).ports ?? []) {
    const target = p.targetPort ?? p.port;
    let containerPort: number | undefined;
    if (typeof target === 'number' || /^\d+$/.test(String(target))) containerPort = Number(target);
    else {
      for (const c of pod.template.containers) containerPort ??= c.ports.find((cp) => cp.name === target)?.containerPort;
    }
    const local = containerPort === undefined ? undefined : pod.ports.get(containerPort);
    // A named targetPort the pod does not declare gets no endpoint, as in Kubernetes.
    if (containerPort === undefined || local === undefined) continue;
    out.push({ name: p.name ?? '', port: local, protocol: p.protocol ?? 'TCP', containerPort });
  }
  return out;
}

/** Targets for a pod's container ports the Service does not cover: Prometheus adds those too. */
function uncoveredPortTargets(pod: LocalPod, covered: Set<number>): Labels[] {
  const targets: Labels[] = [];
  for (const container of announcedPod(pod).containers) {
    for (const port of container.ports) {
      if (covered.has(port.containerPort)) continue;
      targets.push({ __address__: `${pod.host}:${port.containerPort}`, ...containerLabels(container, port), ...podLabels(pod) });
    }
  }
  return targets;
}

/** Role endpoints: one group per Service with a selector, targets for each selected pod and port. */
export function endpointsTargetGroups(network: LocalNetwork, pods: LocalPod[]): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const service of network.services()) {
    if (!serviceSpec(service).selector) continue; // no selector: nobody maintains its Endpoints
    const namespace = service.metadata.namespace ?? 'default';
    const selected = network.podsBehind(service).filter((p) => pods.includes(p));
    const targets: Labels[] = [];
    for (const pod of selected) {
      const covered = new Set<number>();
      for (const port of endpointPorts(service, pod)) {
        covered.add(port.port);
        const container = announcedPod(pod).containers.find((c) => c.ports.some((cp) => cp.containerPort === port.port));
        const cport = container?.ports.find((cp) => cp.containerPort === port.port);
        targets.push({
          __address__: `${pod.host}:${port.port}`,
          [`${meta}endpoint_port_name`]: port.name,
          [`${meta}endpoint_port_protocol`]: port.protocol,
          [`${meta}endpoint_ready`]: String(pod.ready()),
          [`${meta}endpoint_address_target_kind`]: 'Pod',
          [`${meta}endpoint_address_target_name`]: pod.name,
          [`${meta}endpoint_node_name`]: os.hostname(),
          ...podLabels(pod),
          ...(container && cport ? { ...containerLabels(container, cport), [`${meta}pod_container_port_protocol`]: port.protocol } : {}),
          ...serviceLabels(service, pod),
        });
      }
      targets.push(...uncoveredPortTargets(pod, covered).map((t) => ({ ...t, ...serviceLabels(service, pod) })));
    }
    groups.push(
      ...group(targets, {
        [`${meta}namespace`]: namespace,
        // The Endpoints object carries the Service's labels (the endpoints controller copies them).
        ...objectMetaLabels('endpoints', service.metadata.name, service.metadata.labels, {}),
      }),
    );
  }
  return groups;
}

/** Role endpointslice: as endpoints, from the one EndpointSlice the controller makes per Service. */
export function endpointSliceTargetGroups(network: LocalNetwork, pods: LocalPod[]): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const service of network.services()) {
    if (!serviceSpec(service).selector) continue;
    const name = service.metadata.name;
    const sliceLabels = {
      ...(service.metadata.labels ?? {}),
      'kubernetes.io/service-name': name,
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    };
    const targets: Labels[] = [];
    for (const pod of network.podsBehind(service).filter((p) => pods.includes(p))) {
      const covered = new Set<number>();
      for (const port of endpointPorts(service, pod)) {
        covered.add(port.port);
        const container = announcedPod(pod).containers.find((c) => c.ports.some((cp) => cp.containerPort === port.port));
        const cport = container?.ports.find((cp) => cp.containerPort === port.port);
        const ready = String(pod.ready());
        targets.push({
          __address__: `${pod.host}:${port.port}`,
          ...(port.name ? { [`${meta}endpointslice_port_name`]: port.name } : {}),
          [`${meta}endpointslice_port_protocol`]: port.protocol,
          [`${meta}endpointslice_port`]: String(port.port),
          [`${meta}endpointslice_endpoint_conditions_ready`]: ready,
          [`${meta}endpointslice_endpoint_conditions_serving`]: ready,
          [`${meta}endpointslice_endpoint_conditions_terminating`]: 'false',
          [`${meta}endpointslice_address_target_kind`]: 'Pod',
          [`${meta}endpointslice_address_target_name`]: pod.name,
          [`${meta}endpointslice_endpoint_node_name`]: os.hostname(),
          ...podLabels(pod),
          ...(container && cport ? containerLabels(container, cport) : {}),
          ...serviceLabels(service, pod),
        });
      }
      targets.push(...uncoveredPortTargets(pod, covered).map((t) => ({ ...t, ...serviceLabels(service, pod) })));
    }
    groups.push(
      ...group(targets, {
        [`${meta}namespace`]: service.metadata.namespace ?? 'default',
        [`${meta}endpointslice_address_type`]: 'IPv4',
        ...objectMetaLabels('endpointslice', `${name}-local`, sliceLabels, {}),
      }),
    );
  }
  return groups;
}

/**
 * Role service: one target per Service port. In a cluster the address is the Service's DNS name
 * (for blackbox probing); locally, the address of a pod behind it, since no cluster DNS exists here.
 */
export function serviceTargetGroups(network: LocalNetwork): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const service of network.services()) {
    const namespace = service.metadata.namespace ?? 'default';
    const targets: Labels[] = [];
    for (const p of serviceSpec(service).ports ?? []) {
      const local = network.resolve(service.metadata.name, Number(p.port), { namespace });
      if (!local) continue;
      const type = String(serviceSpec(service).type ?? 'ClusterIP');
      targets.push({
        __address__: `${local.host}:${local.port}`,
        [`${meta}service_port_name`]: p.name ?? '',
        [`${meta}service_port_number`]: String(local.port),
        [`${meta}service_port_protocol`]: p.protocol ?? 'TCP',
        [`${meta}service_type`]: type,
        [`${meta}service_cluster_ip`]: local.host,
      });
    }
    groups.push(...group(targets, serviceLabels(service, network.podsBehind(service)[0])));
  }
  return groups;
}

/**
 * http_sd wants one label set per group, shared by its targets; Prometheus's kubernetes_sd groups carry
 * per-target labels instead, so each target becomes its own group with the group labels merged in.
 */
function group(targets: Labels[], groupLabels: Labels): TargetGroup[] {
  return targets.map(({ __address__, ...labels }) => ({ targets: [__address__!], labels: { ...groupLabels, ...labels } }));
}

export interface DiscoveryQuery {
  role: Role;
  /** kubernetes_sd_configs namespaces.names (own_namespace already resolved); all when empty. */
  namespaces: string[];
  /** Equality-based label selectors (`a=b`, `a!=b`, comma-separated), as kubernetes_sd selectors[].label. */
  labelSelector?: string;
}

/** Whether labels satisfy an equality-based Kubernetes label selector. */
export function matchesLabelSelector(selector: string | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return selector
    .split(',')
    .map((term) => term.trim())
    .filter(Boolean)
    .every((term) => {
      const negated = /^([^!=]+)!=(.*)$/.exec(term);
      if (negated) return labels[negated[1]!.trim()] !== negated[2]!.trim();
      const equal = /^([^!=]+)==?(.*)$/.exec(term);
      if (equal) return labels[equal[1]!.trim()] === equal[2]!.trim();
      const key = term.startsWith('!') ? term.slice(1) : term;
      return term.startsWith('!') ? !(key in labels) : key in labels;
    });
}

/** The target groups kubernetes_sd would hand Prometheus for a role, over the local pods. */
export function targetGroups(query: DiscoveryQuery, network: LocalNetwork, pods: LocalPod[]): TargetGroup[] {
  const inNamespace = (ns: string | undefined) => query.namespaces.length === 0 || query.namespaces.includes(ns ?? 'default');
  const scopedPods = pods.filter((p) => inNamespace(p.template.namespace));
  switch (query.role) {
    case 'pod':
      return podTargetGroups(scopedPods.filter((p) => matchesLabelSelector(query.labelSelector, p.template.labels)));
    case 'endpoints':
      return endpointsTargetGroups(network, scopedPods).filter((g) => matchesLabelSelector(query.labelSelector, labelsOf(g, 'service')));
    case 'endpointslice':
      return endpointSliceTargetGroups(network, scopedPods).filter((g) => matchesLabelSelector(query.labelSelector, labelsOf(g, 'service')));
    case 'service':
      return serviceTargetGroups(network).filter(
        (g) => inNamespace(g.labels[`${meta}namespace`]) && matchesLabelSelector(query.labelSelector, labelsOf(g, 'service')),
      );
    default:
      return [];
  }
}

/** The original object labels of a role, read back from a group's meta labels (for selectors). */
function labelsOf(group: TargetGroup, role: string): Record<string, string> {
  const prefix = `${meta}${role}_label_`;
  return Object.fromEntries(
    Object.entries(group.labels)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
}

export interface DiscoveryServer {
  url: string;
  /** The http_sd URL for one kubernetes_sd_configs entry. */
  urlFor(query: DiscoveryQuery): string;
  close(): Promise<void>;
}

/** Serves GET /v1/targets?role=...&namespace=...&labelSelector=... on 127.0.0.1, answering from current(). */
export async function serveDiscovery(current: () => { network: LocalNetwork; pods: LocalPod[] }, port = 0): Promise<DiscoveryServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://discovery');
    const role = url.searchParams.get('role') as Role | null;
    if (req.method !== 'GET' || url.pathname !== '/v1/targets' || !role) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'GET /v1/targets?role=pod|endpoints|endpointslice|service' }));
      return;
    }
    const { network, pods } = current();
    const labelSelector = url.searchParams.get('labelSelector') ?? undefined;
    const groups = targetGroups({ role, namespaces: url.searchParams.getAll('namespace'), ...(labelSelector ? { labelSelector } : {}) }, network, pods);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(groups));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    urlFor(query) {
      const params = new URLSearchParams({ role: query.role });
      for (const ns of query.namespaces) params.append('namespace', ns);
      if (query.labelSelector) params.set('labelSelector', query.labelSelector);
      return `${base}/v1/targets?${params.toString()}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
