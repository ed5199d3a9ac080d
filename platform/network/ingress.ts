// Our KIngress implementation, what Kourier is on a cluster (every Knative ingress is Envoy-based, and
// Envoy cannot be built here): it watches Knative's Ingresses of our class, writes their status so
// Routes and Knative Services become Ready, and proxies HTTP by Host to each split's Service through its
// ready endpoints (Knative's activator while a revision is in Proxy mode, the pods in Serve mode), with
// keep-alive connections upstream. Two listeners: the in-cluster one serves every rule (as
// kourier-internal does), the public one, which the host reaches through a forward, only ExternalIP rules.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../functions/runtime/src/logger.js';
import { startServiceCatalog, type ServiceCatalog } from './catalog.js';
import { backendsFor, clusterIPv4s, findServicePort, RoundRobin, type Backend } from './endpoints.js';
import {
  buildRouteTable,
  chooseSplit,
  hasClass,
  ingressKey,
  matchRoute,
  type KIngress,
  type ListenerKind,
  type Route,
  type RouteSplit,
  type RouteTable,
} from './ingress-routes.js';
import { desiredStatus, statusDiffers, type LoadBalancerDomains } from './ingress-status.js';
import { waitSynced, watchObjects, type WatchedObjects } from './watch.js';

export const defaultIngressClass = 'promsnap.ingress.networking.knative.dev';
const group = 'networking.internal.knative.dev';
const version = 'v1alpha1';
const plural = 'ingresses';

export interface ListenAddress {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface IngressOptions {
  kubeConfig: KubeConfig;
  /** The class in the Ingresses' networking.knative.dev/ingress.class annotation that is ours. */
  ingressClass: string;
  /** The in-cluster listener (behind the ingress's Service): every rule, ClusterLocal and ExternalIP. */
  listen: ListenAddress;
  /** The public listener, reached from the host through a forward: ExternalIP rules only. */
  publicListen?: ListenAddress;
  /**
   * The load balancers' DNS names written into each Ingress's status (one name for both, or each):
   * the Service in front of `listen`, e.g. promsnap-ingress.knative-serving.svc.cluster.local.
   */
  domainInternal: string | LoadBalancerDomains;
  catalog?: ServiceCatalog;
  log?: Logger;
  /**
   * How long one connection attempt to an endpoint may take before the next is tried; default 5 s, Envoy's
   * own default for a cluster's connect_timeout: long enough for the kernel's SYN retransmits at 1 s and 3 s, so one
   * lost SYN to a pod that has just come up on a loaded node is not a 502.
   */
  connectTimeoutMs?: number;
}

export interface KnativeIngress {
  readonly address: ListenAddress;
  readonly publicAddress?: ListenAddress;
  close(): Promise<void>;
}

// Headers that describe one connection, not the request (RFC 9110 7.6.1), never forwarded.
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);
const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export async function startIngress(options: IngressOptions): Promise<KnativeIngress> {
  const log = options.log ?? createLogger({ fields: { component: 'ingress' } });
  const ownCatalog = options.catalog === undefined;
  const catalog = options.catalog ?? (await startServiceCatalog({ kubeConfig: options.kubeConfig, log }));
  const domains = typeof options.domainInternal === 'string' ? { public: options.domainInternal, private: options.domainInternal } : options.domainInternal;
  const custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
  const controller = new IngressController(custom, catalog, options.ingressClass, domains, log);
  const ingresses = watchObjects<KIngress>({
    kubeConfig: options.kubeConfig,
    path: `/apis/${group}/${version}/${plural}`,
    list: () => custom.listClusterCustomObject({ group, version, plural }) as Promise<KubernetesListObject<KIngress>>,
    onChange: () => controller.changed(),
    log,
    what: `${plural}.${group}`,
    // Until Knative's CRDs are installed the list fails with 404: look again soon, not every 30 s.
    maxRetryMs: 5_000,
  });
  controller.attach(ingresses);
  const unsubscribe = catalog.subscribe(() => controller.changed());
  const proxy = new IngressProxy(catalog, controller, options.connectTimeoutMs ?? 5_000, log);
  const servers: http.Server[] = [];
  const close = async () => {
    unsubscribe();
    controller.stop();
    await ingresses.stop();
    await Promise.all(servers.map((server) => proxy.closeServer(server)));
    proxy.close();
    if (ownCatalog) await catalog.close();
  };
  try {
    // Started before Knative's CRDs are installed (the local node starts before Knative, which runs as its
    // pods), the ingress serves an empty table and keeps watching; routes appear once the API is served.
    if (await apiServed(custom)) {
      await waitSynced([{ what: `${plural}.${group}`, cache: ingresses }], 30_000);
      // The table must exist before the first request arrives.
      controller.reconcile();
    } else {
      log.warn('Knative Ingress API not served yet: routing nothing until its CRD is installed', { api: `${group}/${version}` });
    }
    const internal = await proxy.listen('internal', options.listen);
    servers.push(internal.server);
    let publicAddress: ListenAddress | undefined;
    if (options.publicListen) {
      const external = await proxy.listen('public', options.publicListen);
      servers.push(external.server);
      publicAddress = external.address;
    }
    log.info('ingress serving', { ingressClass: options.ingressClass, address: internal.address, publicAddress, domainInternal: domains });
    return { address: internal.address, ...(publicAddress ? { publicAddress } : {}), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function apiServed(api: CustomObjectsApi): Promise<boolean> {
  try {
    const resources = await api.getAPIResources({ group, version });
    return resources.resources.some((resource) => resource.name === plural);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return false;
    throw err;
  }
}

/** Keeps the route table and every Ingress's status in step with the Ingresses, Services and slices. */
class IngressController {
  table: RouteTable = buildRouteTable([]).table;
  private ingresses: WatchedObjects<KIngress> | undefined;
  private scheduled = false;
  private stopped = false;
  /** Status writes in flight, one per Ingress; a change meanwhile runs another pass after it. */
  private readonly writing = new Set<string>();
  private rerun = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 500;

  constructor(
    private readonly api: CustomObjectsApi,
    private readonly catalog: ServiceCatalog,
    private readonly ingressClass: string,
    private readonly domains: LoadBalancerDomains,
    private readonly log: Logger,
  ) {}

  attach(ingresses: WatchedObjects<KIngress>): void {
    this.ingresses = ingresses;
  }

  changed(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.reconcile();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** Rebuilds the route table and writes every status that changed. */
  reconcile(): void {
    if (this.stopped || !this.ingresses) return;
    const ours = this.ingresses.list().filter((ingress) => hasClass(ingress, this.ingressClass));
    const { table, rejected } = buildRouteTable(ours);
    this.table = table;
    for (const ingress of ours) {
      const key = ingressKey(ingress);
      if (this.writing.has(key)) {
        this.rerun = true;
        continue;
      }
      const reason = rejected.get(key);
      const outcome = reason !== undefined ? { rejected: reason, waitingFor: [] } : { waitingFor: this.waitingFor(ingress) };
      const status = desiredStatus(ingress, outcome, this.domains, new Date());
      if (!statusDiffers(ingress.status, status)) continue;
      this.writing.add(key);
      void this.writeStatus(ingress, status).finally(() => {
        this.writing.delete(key);
        if (this.rerun) {
          this.rerun = false;
          this.changed();
        }
      });
    }
  }

  /** The splits whose Service has no ready endpoint on the split's port (Kourier waits for them too). */
  private waitingFor(ingress: KIngress): string[] {
    const waiting = new Set<string>();
    for (const rule of ingress.spec.rules ?? []) {
      for (const path of rule.http?.paths ?? []) {
        for (const split of path.splits ?? []) {
          const label = `${split.serviceNamespace}/${split.serviceName}:${split.servicePort}`;
          const service = this.catalog.service(split.serviceNamespace, split.serviceName);
          if (!service) {
            waiting.add(label);
            continue;
          }
          if (service.spec?.type === 'ExternalName') continue;
          const port = findServicePort(service, split.servicePort);
          if (!port || backendsFor(port, this.catalog.endpointSlices(split.serviceNamespace, split.serviceName)).length === 0) waiting.add(label);
        }
      }
    }
    return [...waiting].sort();
  }

  private async writeStatus(ingress: KIngress, status: KIngress['status']): Promise<void> {
    const { namespace, name } = ingress.metadata;
    try {
      await this.api.patchNamespacedCustomObjectStatus(
        { group, version, namespace, plural, name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      this.retryMs = 500;
      const ready = status?.conditions?.find((c) => c.type === 'Ready');
      this.log.info('ingress status written', {
        ingress: ingressKey(ingress),
        generation: status?.observedGeneration,
        ready: ready?.status,
        reason: ready?.reason,
      });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // Gone: the watch will say so. Anything else: try again, slower each time.
      if (code === 404) return;
      this.log.warn('cannot write ingress status; retrying', { ingress: ingressKey(ingress), error: (err as Error).message, retryInMs: this.retryMs });
      if (!this.retryTimer && !this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.changed();
        }, this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30_000);
      }
    }
  }
}

/** The HTTP side: route, pick a split and an endpoint, forward with keep-alive. */
class IngressProxy {
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
  private readonly roundRobin = new RoundRobin();

  constructor(
    private readonly catalog: ServiceCatalog,
    private readonly controller: IngressController,
    private readonly connectTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  async listen(kind: ListenerKind, where: ListenAddress): Promise<{ server: http.Server; address: ListenAddress }> {
    // No request timeout: Envoy's route timeout is off in Kourier, and Knative enforces the revision's own.
    const server = http.createServer({ noDelay: true, requestTimeout: 0 }, (req, res) => this.handle(kind, req, res));
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: where.host, port: where.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error('ingress listener failed', { kind, err }));
    return { server, address: { host: where.host, port: (server.address() as AddressInfo).port } };
  }

  async closeServer(server: http.Server): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  close(): void {
    this.agent.destroy();
  }

  private handle(kind: ListenerKind, req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = matchRoute(this.controller.table, kind, req.headers.host, req.url ?? '/', (name) => headerValue(req.headers[name]));
    if (!route) return plain(res, 404, `no route for host ${JSON.stringify(req.headers.host ?? '')} and path ${JSON.stringify(req.url ?? '')}\n`);
    const split = chooseSplit(route);
    if (!split) return plain(res, 503, 'no traffic split with a percent above 0\n');
    const target = this.resolve(split);
    if ('error' in target) return plain(res, 503, `${target.error}\n`);
    this.forward(req, res, route, split, target.key, target.backends);
  }

  private resolve(split: RouteSplit): { key: string; backends: Backend[] } | { error: string } {
    const service = this.catalog.service(split.namespace, split.name);
    const label = `${split.namespace}/${split.name}:${split.port}`;
    if (!service) return { error: `no Service ${split.namespace}/${split.name}` };
    const port = findServicePort(service, split.port);
    if (!port) return { error: `Service ${split.namespace}/${split.name} has no port ${split.port}` };
    if (service.spec?.type === 'ExternalName') {
      // Knative points a Route's placeholder (and a DomainMapping) at the ingress's own Service this way:
      // a name inside the cluster is followed to its ClusterIP here, as the DNS responder would answer.
      const host = this.clusterAddress(service.spec.externalName ?? '') ?? service.spec.externalName ?? '';
      return { key: label, backends: [{ ip: host, port: port.port }] };
    }
    const backends = backendsFor(port, this.catalog.endpointSlices(split.namespace, split.name));
    if (backends.length === 0) return { error: `no healthy upstream: ${label} has no ready endpoint` };
    return { key: label, backends };
  }

  /** The ClusterIP behind <service>.<namespace>.svc[.<zone>], when that Service exists. */
  private clusterAddress(name: string): string | undefined {
    const match = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.|$)/.exec(name.toLowerCase());
    if (!match) return undefined;
    const service = this.catalog.service(match[2]!, match[1]!);
    return service ? clusterIPv4s(service)[0] : undefined;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, route: Route, split: RouteSplit, key: string, backends: Backend[]): void {
    const headers = requestHeaders(req, route, split);
    const order = this.roundRobin.order(key, backends);
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    let clientGone = false;
    res.once('close', () => {
      if (!res.writableFinished) clientGone = true;
    });

    const attempt = (index: number, staleRetries: number): void => {
      const backend = order[index]!;
      const upstream = http.request({ host: backend.ip, port: backend.port, method: req.method, path: req.url, headers, agent: this.agent });
      let sent = false;
      let answered = false;
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.once('socket', (socket) => {
        const send = () => {
          sent = true;
          req.pipe(upstream);
        };
        if (!socket.connecting) return send();
        const timer = setTimeout(
          () => upstream.destroy(Object.assign(new Error(`connect timed out after ${this.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })),
          this.connectTimeoutMs,
        );
        socket.once('connect', () => {
          clearTimeout(timer);
          send();
        });
        socket.once('close', () => clearTimeout(timer));
      });
      upstream.once('response', (upstreamRes) => {
        answered = true;
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, responseHeaders(upstreamRes));
        upstreamRes.pipe(res);
        upstreamRes.once('error', () => res.destroy());
        upstreamRes.once('aborted', () => res.destroy());
      });
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        if (clientGone || answered) return res.destroy();
        const next = index + 1 < order.length;
        // Nothing of the request left yet: another endpoint can take it whatever its method.
        if (!sent && next) {
          this.log.debug('endpoint unreachable; trying the next', { upstream: key, endpoint: `${backend.ip}:${backend.port}`, error: err.code ?? err.message });
          return attempt(index + 1, staleRetries);
        }
        // A kept-alive connection the endpoint closed just as we reused it: safe to send again only when
        // the request has no body and repeating it changes nothing.
        if (upstream.reusedSocket && bodyless && idempotent.has(req.method ?? '') && staleRetries > 0) return attempt(index, staleRetries - 1);
        this.log.warn('upstream failed', { upstream: key, endpoint: `${backend.ip}:${backend.port}`, error: err.code ?? err.message });
        if (res.headersSent) return res.destroy();
        plain(res, 502, `upstream ${key} failed: ${err.code ?? err.message}\n`);
      });
    };
    attempt(0, 2);
  }
}

function requestHeaders(req: http.IncomingMessage, route: Route, split: RouteSplit): http.OutgoingHttpHeaders {
  const connectionHeaders = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || hopByHop.has(name) || connectionHeaders.has(name)) continue;
    headers[name] = value;
  }
  // Set, not appended: a client cannot choose the revision or namespace the activator routes to.
  for (const [name, value] of Object.entries(split.setHeaders)) headers[name] = value;
  if (route.rewriteHost) headers['host'] = route.rewriteHost;
  const client = req.socket.remoteAddress ?? '';
  const forwardedFor = headerValue(req.headers['x-forwarded-for']);
  headers['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${client}` : client;
  headers['x-forwarded-proto'] ??= 'http';
  return headers;
}

function responseHeaders(res: http.IncomingMessage): string[] {
  const connectionHeaders = new Set(
    String(res.headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: string[] = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower) || connectionHeaders.has(lower)) continue;
    out.push(name, res.rawHeaders[i + 1]!);
  }
  return out;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function plain(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
