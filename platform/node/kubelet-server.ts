// The kubelet's HTTPS endpoint on <node IP>:10250 (the Node's daemonEndpoints), for Prometheus's
// kubernetes-nodes and kubernetes-cadvisor jobs: a self-signed serving certificate (as kind's kubelets
// have; openssl makes it), and the kubelet's webhook authentication and authorisation: the bearer token
// checked with a TokenReview, the request with a SubjectAccessReview on nodes/<subresource> (metrics for
// /metrics*, proxy for the rest), both cached as the kubelet caches them.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { runCommand } from '../tools/command.js';
import { findSystemTool } from '../tools/find.js';
import { messageOf, type Kube } from './kube.js';
import { cadvisorText, type ContainerSample, type NodeMetrics } from './metrics.js';
import { groupUsage } from './proc-stats.js';

export interface KubeletServerOptions {
  kube: Kube;
  log: Logger;
  nodeName: string;
  nodeIp: string;
  port: number;
  /** Where the serving key and certificate are kept. */
  dir: string;
  metrics: NodeMetrics;
  containers: () => ContainerSample[];
  pods: () => V1Pod[];
}

/** A self-signed serving certificate for the node's IP and name. */
export async function servingCertificate(dir: string, nodeName: string, nodeIp: string): Promise<{ key: Buffer; cert: Buffer }> {
  const keyFile = path.join(dir, 'kubelet.key');
  const certFile = path.join(dir, 'kubelet.crt');
  if (!existsSync(certFile)) {
    await runCommand(findSystemTool('openssl'), [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      `/CN=${nodeName}@${Math.floor(Date.now() / 1000)}`,
      '-addext',
      `subjectAltName=IP:${nodeIp},DNS:${nodeName}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]);
  }
  return { key: await readFile(keyFile), cert: await readFile(certFile) };
}

/** The kubelet's authorisation subresource for a path (server/auth.go). */
export function subresourceFor(requestPath: string): string {
  if (requestPath === '/metrics' || requestPath.startsWith('/metrics/')) return 'metrics';
  if (requestPath.startsWith('/stats')) return 'stats';
  if (requestPath.startsWith('/logs')) return 'log';
  return 'proxy';
}

interface Cached<T> {
  value: T;
  untilMs: number;
}

export interface KubeletServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startKubeletServer(options: KubeletServerOptions): Promise<KubeletServer> {
  const { kube, log } = options;
  const tls = await servingCertificate(options.dir, options.nodeName, options.nodeIp);
  const authn = new Map<string, Cached<{ user: string; groups: string[]; uid: string; extra: Record<string, string[]> } | undefined>>();
  const authz = new Map<string, Cached<boolean>>();

  const authenticate = async (token: string) => {
    const cached = authn.get(token);
    if (cached && cached.untilMs > Date.now()) return cached.value;
    const review = await kube.authentication.createTokenReview({ body: { spec: { token } } });
    const user = review.status?.authenticated ? review.status.user : undefined;
    const value = user ? { user: user.username ?? '', groups: user.groups ?? [], uid: user.uid ?? '', extra: user.extra ?? {} } : undefined;
    authn.set(token, { value, untilMs: Date.now() + 120_000 });
    if (authn.size > 1_000) authn.delete(authn.keys().next().value!);
    return value;
  };

  const authorize = async (who: { user: string; groups: string[]; uid: string; extra: Record<string, string[]> }, verb: string, subresource: string) => {
    const key = `${who.user}/${verb}/${subresource}`;
    const cached = authz.get(key);
    if (cached && cached.untilMs > Date.now()) return cached.value;
    const review = await kube.authorization.createSubjectAccessReview({
      body: {
        spec: {
          user: who.user,
          groups: who.groups,
          uid: who.uid,
          extra: who.extra,
          resourceAttributes: { verb, resource: 'nodes', subresource, name: options.nodeName, version: 'v1' },
        },
      },
    });
    const allowed = review.status?.allowed === true;
    authz.set(key, { value: allowed, untilMs: Date.now() + (allowed ? 300_000 : 30_000) });
    if (authz.size > 1_000) authz.delete(authz.keys().next().value!);
    return allowed;
  };

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'https://node');
      const header = req.headers.authorization ?? '';
      const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
      try {
        const who = token ? await authenticate(token) : undefined;
        if (!who) {
          res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized');
          return;
        }
        const verb = req.method === 'GET' || req.method === 'HEAD' ? 'get' : (req.method ?? 'get').toLowerCase();
        const subresource = subresourceFor(url.pathname);
        if (!(await authorize(who, verb, subresource))) {
          res.writeHead(403, { 'content-type': 'text/plain' }).end(`Forbidden (user=${who.user}, verb=${verb}, resource=nodes, subresource=${subresource})`);
          return;
        }
        switch (url.pathname) {
          case '/metrics': {
            const text = await options.metrics.registry.metrics();
            res.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(text);
            return;
          }
          case '/metrics/cadvisor': {
            const samples = options.containers();
            const usage = await groupUsage(new Set(samples.map((s) => s.pid)));
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(cadvisorText(samples, usage));
            return;
          }
          case '/healthz':
            res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
            return;
          case '/pods':
            res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: options.pods() }));
            return;
          default:
            res.writeHead(404, { 'content-type': 'text/plain' }).end(`${url.pathname} is not served by the local node`);
        }
      } catch (err) {
        log.warn('kubelet endpoint failed', { path: url.pathname, err: messageOf(err) });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.nodeIp, resolve);
  });
  return {
    url: `https://${options.nodeIp}:${options.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
