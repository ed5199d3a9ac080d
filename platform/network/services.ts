// What kube-proxy does for the local cluster, in userspace: a TCP listener on every ClusterIP:port (and
// NodePort on the node's address) of a Service that has endpoints, splicing each connection to an
// endpoint chosen round-robin, the next one tried when a connection cannot be made. A Service without
// usable endpoints has no listener, so clients get "connection refused" at once, as kube-proxy's REJECT
// rule gives them. Changes to Services and EndpointSlices apply to new connections; established ones are
// left alone until either side closes them (only close() cuts them). Inside the cluster's sandbox the
// whole ClusterIP range is a local route, so any ClusterIP can be bound. Headless and ExternalName
// Services get no listener: DNS answers for them.
import net from 'node:net';
import type { KubeConfig, V1Service } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../functions/runtime/src/logger.js';
import { startServiceCatalog, type ServiceCatalog } from './catalog.js';
import { backendsFor, clusterIPv4s, RoundRobin, type Backend } from './endpoints.js';

export interface ServiceProxyOptions {
  kubeConfig: KubeConfig;
  /** The address to listen on for a ClusterIP; default the ClusterIP itself. */
  bindHost?: (clusterIp: string) => string;
  /** The node's address: NodePort Services listen on it. No NodePorts without it. */
  nodeAddress?: string;
  /** A catalog shared with other components; by default the proxy watches for itself. */
  catalog?: ServiceCatalog;
  log?: Logger;
  /** How long one connection attempt to an endpoint may take before the next is tried; default 1 s. */
  connectTimeoutMs?: number;
}

export interface ServiceProxy {
  /** The listeners bound now, for diagnostics and tests. */
  listening(): ListenerPlan[];
  /** Stops listening and cuts every proxied connection. */
  close(): Promise<void>;
}

/** One listener the proxy wants: where it listens and where its connections go. */
export interface ListenerPlan {
  host: string;
  port: number;
  /** namespace/name of the Service. */
  service: string;
  /** The Service port's name ('' when unnamed) or number. */
  servicePort: string;
  kind: 'ClusterIP' | 'NodePort';
  backends: Backend[];
}

/**
 * The listeners a set of Services asks for: each TCP port on each IPv4 ClusterIP, and on the node's
 * address for each nodePort, for Services whose port has at least one usable endpoint.
 */
export function planListeners(
  services: readonly V1Service[],
  slicesOf: ServiceCatalog['endpointSlices'],
  options: { nodeAddress?: string | undefined; bindHost?: ((clusterIp: string) => string) | undefined } = {},
): Map<string, ListenerPlan> {
  const plans = new Map<string, ListenerPlan>();
  for (const service of services) {
    const namespace = service.metadata?.namespace ?? '';
    const name = service.metadata?.name ?? '';
    const clusterIps = clusterIPv4s(service);
    if (clusterIps.length === 0) continue;
    const nodePorts = options.nodeAddress !== undefined && (service.spec?.type === 'NodePort' || service.spec?.type === 'LoadBalancer');
    for (const port of service.spec?.ports ?? []) {
      if ((port.protocol ?? 'TCP') !== 'TCP') continue;
      const backends = backendsFor(port, slicesOf(namespace, name));
      if (backends.length === 0) continue;
      const common = { service: `${namespace}/${name}`, servicePort: port.name || String(port.port), backends };
      for (const ip of clusterIps) {
        const host = options.bindHost ? options.bindHost(ip) : ip;
        plans.set(`${host}:${port.port}`, { host, port: port.port, kind: 'ClusterIP', ...common });
      }
      if (nodePorts && port.nodePort) {
        plans.set(`${options.nodeAddress}:${port.nodePort}`, { host: options.nodeAddress!, port: port.nodePort, kind: 'NodePort', ...common });
      }
    }
  }
  return plans;
}

interface Listener {
  server: net.Server;
  bound: boolean;
  retryTimer?: NodeJS.Timeout;
  retryMs: number;
  lastError?: string;
}

export async function startServiceProxy(options: ServiceProxyOptions): Promise<ServiceProxy> {
  const log = options.log ?? createLogger({ fields: { component: 'service-proxy' } });
  const ownCatalog = options.catalog === undefined;
  const catalog = options.catalog ?? (await startServiceCatalog({ kubeConfig: options.kubeConfig, log }));
  const proxy = new UserspaceProxy(catalog, options, log);
  const unsubscribe = catalog.subscribe(() => proxy.sync());
  proxy.sync();
  return {
    listening: () => proxy.listening(),
    async close() {
      unsubscribe();
      await proxy.close();
      if (ownCatalog) await catalog.close();
    },
  };
}

class UserspaceProxy {
  private plans = new Map<string, ListenerPlan>();
  private readonly listeners = new Map<string, Listener>();
  private readonly sockets = new Set<net.Socket>();
  private readonly roundRobin = new RoundRobin();
  private closed = false;

  constructor(
    private readonly catalog: ServiceCatalog,
    private readonly options: ServiceProxyOptions,
    private readonly log: Logger,
  ) {}

  listening(): ListenerPlan[] {
    return [...this.listeners].filter(([, listener]) => listener.bound).flatMap(([key]) => this.plans.get(key) ?? []);
  }

  sync(): void {
    if (this.closed) return;
    this.plans = planListeners(this.catalog.services(), (namespace, name) => this.catalog.endpointSlices(namespace, name), this.options);
    for (const [key, listener] of this.listeners) {
      if (this.plans.has(key)) continue;
      void this.stopListening(key, listener);
    }
    for (const [key, plan] of this.plans) {
      if (!this.listeners.has(key)) this.listen(key, plan);
    }
    this.roundRobin.retain(new Set(this.plans.keys()));
  }

  async close(): Promise<void> {
    this.closed = true;
    const closing = [...this.listeners].map(([key, listener]) => this.stopListening(key, listener));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await Promise.all(closing);
  }

  private listen(key: string, plan: ListenerPlan): void {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (client) => this.accept(key, client));
    const listener: Listener = { server, bound: false, retryMs: 1_000 };
    this.listeners.set(key, listener);
    const attempt = () => {
      listener.retryTimer = undefined;
      if (this.listeners.get(key) !== listener) return;
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (this.listeners.get(key) !== listener) return;
        // Another listener holds the address (the DNS responder on a kube-dns ClusterIP, a leftover
        // process): say so once per reason, and try again, slower each time.
        const reason = err.code ?? err.message;
        if (listener.lastError !== reason) {
          this.log.warn('cannot listen for a Service; retrying', { service: plan.service, address: key, error: reason });
          listener.lastError = reason;
        }
        listener.retryTimer = setTimeout(attempt, listener.retryMs);
        listener.retryMs = Math.min(listener.retryMs * 2, 30_000);
      });
      server.listen({ host: plan.host, port: plan.port, exclusive: true }, () => {
        server.removeAllListeners('error');
        if (this.listeners.get(key) !== listener) {
          // Withdrawn while the bind was under way.
          server.close();
          return;
        }
        server.on('error', (err) => this.log.error('listener failed', { address: key, err }));
        listener.bound = true;
        this.log.info('listening for Service', { service: plan.service, port: plan.servicePort, address: key, kind: plan.kind });
      });
    };
    attempt();
  }

  /** Stops accepting; connections already spliced keep going until an end closes them. */
  private stopListening(key: string, listener: Listener): Promise<void> {
    this.listeners.delete(key);
    if (listener.retryTimer) clearTimeout(listener.retryTimer);
    if (!listener.bound) return Promise.resolve();
    this.log.info('stopped listening', { address: key });
    return new Promise((resolve) => listener.server.close(() => resolve()));
  }

  private accept(key: string, client: net.Socket): void {
    this.track(client);
    client.on('error', () => client.destroy());
    const plan = this.plans.get(key);
    const order = plan ? this.roundRobin.order(key, plan.backends) : [];
    const attempt = (index: number) => {
      const backend = order[index];
      if (!backend || client.destroyed) {
        if (!client.destroyed) {
          this.log.warn('no endpoint accepted the connection', { address: key, tried: order.map((b) => `${b.ip}:${b.port}`) });
          // A reset, not an orderly close: the client sees the connection fail, as with a REJECT.
          client.resetAndDestroy();
        }
        return;
      }
      const upstream = net.connect({ host: backend.ip, port: backend.port, allowHalfOpen: true, noDelay: true });
      const timer = setTimeout(() => upstream.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      const failed = (err: Error) => {
        clearTimeout(timer);
        this.log.debug('endpoint refused a connection; trying the next', { address: key, endpoint: `${backend.ip}:${backend.port}`, error: err.message });
        attempt(index + 1);
      };
      upstream.once('error', failed);
      upstream.once('connect', () => {
        clearTimeout(timer);
        upstream.off('error', failed);
        this.track(upstream);
        splice(client, upstream);
        client.resume();
      });
    };
    attempt(0);
  }

  private get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? 1_000;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}

/**
 * Copies both ways until both sides have finished. An end (FIN) on one side is passed on as an end on
 * the other, so a client that half-closes still gets its answer; an error on either side ends both.
 */
export function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const destroyBoth = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', destroyBoth);
  b.on('error', destroyBoth);
  a.once('close', () => b.destroySoon());
  b.once('close', () => a.destroySoon());
}
