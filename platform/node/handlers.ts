// What probes and lifecycle hooks do (kubernetes pkg/probe/{http,tcp,exec}, kuberuntime's handlers):
// httpGet to the pod IP (scheme, host, port by name or number, path, headers; `User-Agent: kube-probe/1.37`
// and `Accept: */*` unless given; 2xx and 3xx pass; redirects followed on the same host only; no keep-alive;
// certificates not checked), tcpSocket (a connection within the timeout), exec (the command inside the
// container, exit 0 passes), and the preStop/postStart sleep action.
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { V1Container, V1HTTPGetAction, V1LifecycleHandler, V1Probe } from '@kubernetes/client-node';

export const probeUserAgent = 'kube-probe/1.37';

export interface HandlerOutcome {
  /** success, failure, or error (the probe could not be made: a port name the container does not have). */
  result: 'success' | 'failure' | 'error';
  /** What the kubelet would put in the Unhealthy event or the hook failure. */
  output: string;
  /** A 3xx answer was taken as success, as the kubelet warns about. */
  warning?: boolean;
}

/** How a handler's exec runs inside the container: the argv to spawn for a command. */
export type ExecInContainer = (command: string[]) => { file: string; args: string[]; env: Record<string, string> };

/** probe.ResolveContainerPort: a number, or the name of one of the container's ports. */
export function resolvePort(port: number | string | undefined, container: V1Container): number | undefined {
  if (typeof port === 'number') return port > 0 && port < 65536 ? port : undefined;
  if (typeof port === 'string') {
    if (/^\d+$/.test(port)) return resolvePort(Number(port), container);
    return container.ports?.find((p) => p.name === port)?.containerPort;
  }
  return undefined;
}

export async function httpGet(
  action: V1HTTPGetAction,
  container: V1Container,
  podIp: string,
  timeoutMs: number,
  purpose: 'probe' | 'hook' = 'probe',
): Promise<HandlerOutcome> {
  const port = resolvePort(action.port, container);
  if (port === undefined) return { result: 'error', output: `unable to resolve port ${String(action.port)} of container ${container.name}` };
  const scheme = (action.scheme ?? 'HTTP').toLowerCase();
  const host = action.host || podIp;
  const headers: Record<string, string> = {};
  for (const header of action.httpHeaders ?? []) headers[header.name] = header.value;
  const has = (name: string) => Object.keys(headers).some((h) => h.toLowerCase() === name.toLowerCase());
  if (!has('user-agent')) headers['User-Agent'] = purpose === 'probe' ? probeUserAgent : 'kube-lifecycle/1.37';
  if (!has('accept')) headers['Accept'] = '*/*';
  else if (Object.entries(headers).some(([h, v]) => h.toLowerCase() === 'accept' && v === ''))
    for (const h of Object.keys(headers)) if (h.toLowerCase() === 'accept') delete headers[h];
  const deadline = Date.now() + timeoutMs;
  const base = new URL(`${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`);
  let url = new URL(action.path ?? '/', base);
  for (let redirects = 0; ; redirects++) {
    const answer = await request(url, headers, Math.max(1, deadline - Date.now()));
    if ('error' in answer) return { result: 'failure', output: answer.error };
    const { status, location, body } = answer;
    if (status >= 300 && status < 400 && location) {
      const next = new URL(location, url);
      if (next.hostname === url.hostname && redirects < 10) {
        url = next;
        continue;
      }
      return { result: 'success', output: `Probe terminated redirects, Response body: ${body}`, warning: true };
    }
    if (status >= 200 && status < 400) return { result: 'success', output: body };
    return { result: 'failure', output: `HTTP probe failed with statuscode: ${status}` };
  }
}

function request(
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; location?: string; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, { method: 'GET', headers, agent: false, rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < 10_240) chunks.push(chunk);
        size += chunk.length;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          ...(res.headers.location ? { location: res.headers.location } : {}),
          body: Buffer.concat(chunks).toString('utf8').slice(0, 10_240),
        }),
      );
      res.on('error', (err) => resolve({ error: err.message }));
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`Get "${url.href}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`)),
      timeoutMs,
    );
    req.on('close', () => clearTimeout(timer));
    req.on('error', (err) => resolve({ error: err.message.startsWith('Get "') ? err.message : `Get "${url.href}": ${err.message}` }));
    req.end();
  });
}

export function tcpSocket(host: string, port: number, timeoutMs: number): Promise<HandlerOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ result: 'failure', output: `dial tcp ${host}:${port}: i/o timeout` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ result: 'success', output: '' });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve({ result: 'failure', output: `dial tcp ${host}:${port}: ${err.message}` });
    });
  });
}

export function execIn(exec: ExecInContainer, command: string[], timeoutMs: number): Promise<HandlerOutcome> {
  return new Promise((resolve) => {
    const { file, args, env } = exec(command);
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const output: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ result: 'error', output: err.message });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const text = Buffer.concat(output).toString('utf8').slice(0, 10_240);
      if (timedOut) resolve({ result: 'failure', output: `command ${JSON.stringify(command)} timed out` });
      else
        resolve({ result: code === 0 ? 'success' : 'failure', output: code === 0 ? text : `command ${JSON.stringify(command)} exited with ${code}: ${text}` });
    });
  });
}

/** Runs a probe once. */
export async function runProbe(probe: V1Probe, container: V1Container, podIp: string, exec: ExecInContainer): Promise<HandlerOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) return httpGet(probe.httpGet, container, podIp, timeoutMs);
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    if (port === undefined) return { result: 'error', output: `unable to resolve port ${String(probe.tcpSocket.port)} of container ${container.name}` };
    return tcpSocket(probe.tcpSocket.host || podIp, port, timeoutMs);
  }
  if (probe.exec?.command) return execIn(exec, probe.exec.command, timeoutMs);
  if (probe.grpc) return { result: 'failure', output: 'grpc probes are not supported by the local node' };
  return { result: 'error', output: `missing probe handler for container ${container.name}` };
}

/** Runs a lifecycle hook (preStop, postStart) within the time left. */
export async function runHook(
  handler: V1LifecycleHandler,
  container: V1Container,
  podIp: string,
  exec: ExecInContainer,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<HandlerOutcome> {
  if (handler.httpGet) return httpGet(handler.httpGet, container, podIp, timeoutMs, 'hook');
  if (handler.exec?.command) return execIn(exec, handler.exec.command, timeoutMs);
  if (handler.sleep) {
    const ms = Math.min(handler.sleep.seconds * 1000, timeoutMs);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    return { result: 'success', output: '' };
  }
  // tcpSocket hooks are accepted by the API and do nothing in the kubelet.
  return { result: 'success', output: '' };
}
