// Cluster addresses in the manifests (http://prometheus.monitoring.svc.cluster.local:9090, a Knative
// Service's name, localhost inside a pod) mapped to the loopback address of the local process that
// stands in for the pods behind them. Resolution follows the Services in the rendered manifests:
// Service port -> targetPort (number or container port name) -> the selected pod's local port.
import { localPortOf, selects, serviceSpec, type KubeObject, type LocalPod } from './workloads.js';

export interface LocalAddress {
  host: string;
  port: number;
}

export class LocalNetwork {
  constructor(
    private readonly pods: LocalPod[],
    /** Every rendered object: v1 Services and Knative Services are read from it. */
    private readonly objects: KubeObject[],
  ) {}

  /** The Kubernetes Services (v1) whose selector picks the pod. */
  servicesOf(pod: LocalPod): KubeObject[] {
    return this.objects.filter(
      (o) => o.apiVersion === 'v1' && o.kind === 'Service' && selects(serviceSpec(o).selector, pod, o.metadata.namespace ?? 'default'),
    );
  }

  /** v1 Services in the manifests. */
  services(): KubeObject[] {
    return this.objects.filter((o) => o.apiVersion === 'v1' && o.kind === 'Service');
  }

  /** The pods a v1 Service or a Knative Service sends traffic to. */
  podsBehind(service: KubeObject): LocalPod[] {
    const namespace = service.metadata.namespace ?? 'default';
    if (service.apiVersion.startsWith('serving.knative.dev/')) {
      return this.pods.filter((p) => p.template.namespace === namespace && p.template.labels['serving.knative.dev/service'] === service.metadata.name);
    }
    return this.pods.filter((p) => selects(serviceSpec(service).selector, p, namespace));
  }

  /**
   * Where host:port, as seen from a pod in `fromNamespace` (or from `fromPod` itself for localhost),
   * is served locally; undefined when nothing local serves it.
   */
  resolve(host: string, port: number, from: { namespace: string; pod?: LocalPod }): LocalAddress | undefined {
    if (host === 'localhost' || host === '127.0.0.1') {
      const local = from.pod ? localPortOf(from.pod, port) : undefined;
      return local === undefined ? undefined : { host: from.pod!.host, port: local };
    }
    const parts = host.replace(/\.$/, '').split('.');
    const suffix = parts.slice(2).join('.');
    if (parts.length > 2 && suffix !== 'svc' && suffix !== 'svc.cluster.local') return undefined;
    const [name, namespace = from.namespace] = parts;
    const service = this.objects.find(
      (o) =>
        o.metadata.name === name &&
        (o.metadata.namespace ?? 'default') === namespace &&
        o.kind === 'Service' &&
        (o.apiVersion === 'v1' || o.apiVersion.startsWith('serving.knative.dev/')),
    );
    if (!service) return undefined;
    const pod = this.podsBehind(service).find((p) => p.ready()) ?? this.podsBehind(service)[0];
    if (!pod) return undefined;
    if (service.apiVersion !== 'v1') {
      // A Knative Service answers on port 80 and routes to the user container's port.
      if (port !== 80) return undefined;
      const userPort = pod.template.containers.find((c) => !c.init)?.ports[0]?.containerPort;
      const local = userPort === undefined ? undefined : pod.ports.get(userPort);
      return local === undefined ? undefined : { host: pod.host, port: local };
    }
    const servicePort = (serviceSpec(service).ports ?? []).find((p) => Number(p.port) === port);
    if (!servicePort) return undefined;
    const local = localPortOf(pod, servicePort.targetPort ?? servicePort.port);
    return local === undefined ? undefined : { host: pod.host, port: local };
  }

  /** A URL with a cluster host rewritten to the local address serving it; unchanged when none does. */
  rewriteUrl(text: string, from: { namespace: string; pod?: LocalPod }): string {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return text;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return text;
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const local = this.resolve(url.hostname, port, from);
    if (!local) return text;
    // Local processes serve plain HTTP on loopback.
    const rewritten = new URL(text);
    rewritten.protocol = 'http:';
    rewritten.hostname = local.host;
    rewritten.port = String(local.port);
    // Keep the original's trailing-slash choice: URL adds "/" to a bare origin.
    const out = rewritten.toString();
    return text.endsWith('/') || url.pathname !== '/' ? out : out.replace(/\/$/, '');
  }
}
