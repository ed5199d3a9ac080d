// A small HTTP forward proxy on loopback standing in for cluster DNS and kube-proxy. Knative writes
// cluster names into every status (broker-ingress.knative-eventing.svc.cluster.local,
// <channel>-kn-channel.<ns>.svc.cluster.local, a Knative Service's address) and its data plane sends to
// them; its Go clients honour HTTP_PROXY, so pointing that at this proxy lets those names resolve to the
// local processes serving them. The Host header is passed through untouched: the channel dispatcher
// routes by it. Every request that goes through is reported to observers once its response has ended,
// so a test can count delivery attempts and the gaps between them as Knative made them.
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where a cluster name is served: a loopback TCP port, or a unix socket bridged into a namespace. */
export type ProxyTarget = { port: number; host?: string } | { socketPath: string };

export interface ProxyRoute {
  /** An exact host name (no port), or a pattern tested against it. */
  host: string | RegExp;
  target: ProxyTarget;
  /** Shown in errors and records, e.g. `broker-ingress`. */
  name: string;
}

/** One request as it went through the proxy. */
export interface ProxiedRequest {
  /** Host name the client asked for (no port). */
  host: string;
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Route name, or undefined when no route matched. */
  route: string | undefined;
  /** Status sent back to the client (502 when the target could not be reached or nothing matched). */
  status: number;
  /** Date.now() when the request arrived and when its response ended. */
  startedAt: number;
  endedAt: number;
}

export interface ClusterProxy {
  /** Loopback port the proxy listens on. */
  readonly port: number;
  /** http://127.0.0.1:PORT, the value for HTTP_PROXY. */
  readonly url: string;
  /** Adds a route; later routes are tried first, so a test can override a default. */
  route(route: ProxyRoute): void;
  /** Calls fn for every request once its response has ended; returns a function that unsubscribes. */
  observe(fn: (request: ProxiedRequest) => void): () => void;
  /** Sends one request to a cluster URL through the proxy, as a client in the cluster would. */
  send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<ProxyResponse>;
  close(): Promise<void>;
}

export interface ProxyResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

// Hop-by-hop headers (RFC 9110 section 7.6.1) are the proxy's own business, never forwarded.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade']);

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!hopByHop.has(name) && value !== undefined) out[name] = value;
  return out;
}

export async function startClusterProxy(options: { port?: number; routes?: ProxyRoute[] } = {}): Promise<ClusterProxy> {
  const routes: ProxyRoute[] = [...(options.routes ?? [])].reverse();
  const observers = new Set<(request: ProxiedRequest) => void>();
  // Kept-alive connections to each target, as a pod's client would keep them to a Service.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const find = (host: string) => routes.find((r) => (typeof r.host === 'string' ? r.host === host : r.host.test(host)));

  const server = http.createServer((req, res) => {
    const startedAt = Date.now();
    let target: URL;
    try {
      // A forward proxy is sent the absolute URL; a client that sends a path gets its Host header used.
      target = new URL(req.url ?? '/', `http://${req.headers.host ?? 'unknown'}`);
    } catch {
      res.writeHead(400).end('cluster-proxy: not a URL\n');
      return;
    }
    const host = target.hostname;
    const path = `${target.pathname}${target.search}`;
    const route = find(host);
    const record = (status: number) => {
      const entry: ProxiedRequest = {
        host,
        method: req.method ?? 'GET',
        path,
        headers: req.headers,
        route: route?.name,
        status,
        startedAt,
        endedAt: Date.now(),
      };
      for (const fn of observers) fn(entry);
    };
    if (!route) {
      req.resume();
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`cluster-proxy: no route for host ${host}\n`);
      record(502);
      return;
    }
    const upstream = http.request(
      {
        ...('socketPath' in route.target ? { socketPath: route.target.socketPath } : { host: route.target.host ?? '127.0.0.1', port: route.target.port }),
        method: req.method,
        path,
        headers: forwardable(req.headers),
        agent,
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, forwardable(upstreamRes.headers));
        upstreamRes.pipe(res);
        upstreamRes.on('end', () => record(upstreamRes.statusCode ?? 502));
        upstreamRes.on('error', () => res.destroy());
      },
    );
    upstream.on('error', (err) => {
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`cluster-proxy: ${host} (${route.name}) unreachable: ${err.message}\n`);
      record(502);
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    port,
    url,
    route(route) {
      routes.unshift(route);
    },
    observe(fn) {
      observers.add(fn);
      return () => observers.delete(fn);
    },
    send(target, init) {
      return new Promise((resolve, reject) => {
        const parsed = new URL(target);
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: init.method ?? 'GET',
            // Absolute-form request target, as any HTTP client configured with a proxy sends it.
            path: parsed.toString(),
            headers: { host: parsed.host, ...(init.headers ?? {}) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(init.body);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
