// The network components' test bed: the loopback test API server, and one network + mount namespace that
// stands in for the cluster's sandbox (ClusterIPs and pod IPs as local routes, echo backends on pod IPs,
// a resolv.conf naming the cluster DNS, the API server's port bridged in). The components run in it as
// a process of their own (main.ts), real clients (hey, getent, a Go program) through nsenter, and the
// test process opens TCP connections inside through the agent's connector. Everything lives under one
// temporary folder and dies with the namespace's processes.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { runCommand, type CommandOptions, type CommandResult } from '../../tools/command.js';
import { findSystemTool } from '../../tools/find.js';
import { startProcess, type ManagedProcess, type StartOptions } from '../../tools/process.js';
import { startTestApiServer, type TestApiServer } from '../../testing/apiserver.js';
import { HostBridges, networkIsolation } from '../../testing/netns.js';
import { toolDir } from '../../tools/versions.js';
import { networkClusterRole, networkClusterRoleBinding } from '../rbac.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const bridgeScript = path.join(repoRoot, 'platform/testing/netns-bridge.ts');
const agentScript = path.join(here, 'netns-agent.ts');
export const networkMain = path.join(repoRoot, 'platform/network/main.ts');

export interface Testbed {
  api: TestApiServer;
  dir: string;
  /** A kubeconfig (path) for a ServiceAccount bound only to the network ClusterRole (rbac.ts). */
  networkKubeconfig: string;
  /** Runs a command inside the namespace. */
  inside(command: string, args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** Starts a long-running process inside the namespace (stopped by stop() at the latest). */
  startInside(options: StartOptions): Promise<ManagedProcess>;
  /** A TCP connection to host:port inside; rejects with the error code the agent saw (ECONNREFUSED). */
  connect(host: string, port: number): Promise<net.Socket>;
  /** An HTTP agent whose connections go to addresses inside the namespace. */
  agent(options?: http.AgentOptions): http.Agent;
  /** A client-node KubeConfig for the admin. */
  admin: KubeConfig;
  stop(): Promise<void>;
}

export interface TestbedOptions {
  /** Echo backends (IP:PORT) on pod IPs. */
  echo?: string[];
  /** The resolv.conf every process inside sees. */
  resolvConf?: string;
  /** Install Knative's KIngress CRD (networking.internal.knative.dev) in the API server. */
  knativeIngressCrd?: boolean;
}

/** Knative's networking CRD for its Ingress (the one ingress.ts watches), in a folder of its own. */
export async function knativeIngressCrdDir(dir: string): Promise<string> {
  const source = path.join(toolDir('knative-serving-src'), 'networking', 'config', 'ingress.yaml');
  const target = path.join(dir, 'crds');
  await mkdir(target, { recursive: true });
  await copyFile(source, path.join(target, 'ingress.yaml'));
  return target;
}

export async function startTestbed(options: TestbedOptions = {}): Promise<Testbed> {
  const isolation = await networkIsolation();
  if (!isolation.available) throw new Error(`network namespaces are not available here: ${isolation.reason}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-net-'));
  const cleanups: Array<() => Promise<unknown>> = [async () => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const crdDirectoryPaths = options.knativeIngressCrd ? [await knativeIngressCrdDir(dir)] : [];
    const api = await startTestApiServer({ crdDirectoryPaths });
    cleanups.push(() => api.stop());
    const admin = new KubeConfig();
    admin.loadFromFile(api.kubeconfigPath);

    const networkKubeconfig = path.join(dir, 'network.kubeconfig');
    await writeFile(networkKubeconfig, await restrictedKubeconfig(api), { mode: 0o600 });

    const bridges = new HostBridges(dir);
    cleanups.push(() => bridges.close());
    const apiPort = Number(new URL(api.url).port);
    const connector = path.join(dir, 'connector.sock');
    const resolvConf = path.join(dir, 'resolv.conf');
    await writeFile(
      resolvConf,
      options.resolvConf ?? 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n',
    );
    const agentConfig = {
      ip: isolation.ip,
      addresses: ['10.244.0.1/32'],
      localRoutes: ['10.96.0.0/16', '10.244.0.0/16'],
      resolvConf,
      connector,
      echo: options.echo ?? [],
    };
    const bridgeConfig = { ip: isolation.ip, inbound: [{ port: apiPort, socket: await bridges.socketFor(apiPort) }], outbound: [] };
    const unshareArgs = [...isolation.unshareArgs, '--mount', '--propagation', 'private'];
    let agentReady = false;
    const holder = await startProcess({
      name: 'netns-agent',
      command: isolation.unshare,
      args: [...unshareArgs, process.execPath, bridgeScript, JSON.stringify(bridgeConfig), '--', process.execPath, agentScript, JSON.stringify(agentConfig)],
      onLine: (line) => (agentReady ||= line === 'agent ready'),
      readyCheck: { what: 'the agent to be ready', check: () => agentReady },
      readyTimeoutMs: 15_000,
    });
    cleanups.push(() => holder.stop('SIGTERM', 3_000));
    const nsenter = findSystemTool('nsenter');
    // Entering the mount namespace would leave the command in / (nsenter's default): keep the repository.
    const enter = (command: string, args: string[], cwd = repoRoot) => ({
      command: nsenter,
      args: ['-t', String(holder.pid), '-n', '-m', `--wd=${cwd}`, '--', command, ...args],
    });

    const connect = (host: string, port: number) =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ path: connector });
        let head = Buffer.alloc(0);
        const onData = (chunk: Buffer) => {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf(10);
          if (end < 0) return;
          socket.off('data', onData);
          const line = head.subarray(0, end).toString('utf8');
          const rest = head.subarray(end + 1);
          if (line !== 'OK') {
            socket.destroy();
            return reject(Object.assign(new Error(`connect ${host}:${port} inside: ${line}`), { code: line.replace(/^ERR /, '') }));
          }
          if (rest.length > 0) socket.unshift(rest);
          resolve(socket);
        };
        socket.on('data', onData);
        socket.once('error', reject);
        socket.write(`${host}:${port}\n`);
      });

    class InsideAgent extends http.Agent {
      override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, socket: net.Socket) => void): undefined {
        connect(options.host ?? '', Number(options.port)).then(
          (socket) => callback?.(null, socket),
          (err: Error) => callback?.(err, undefined as unknown as net.Socket),
        );
        return undefined;
      }
    }

    return {
      api,
      dir,
      networkKubeconfig,
      admin,
      inside: (command, args, commandOptions) => {
        const entered = enter(command, args, commandOptions?.cwd);
        return runCommand(entered.command, entered.args, commandOptions);
      },
      async startInside(startOptions) {
        const entered = enter(startOptions.command, startOptions.args ?? [], startOptions.cwd);
        const child = await startProcess({ ...startOptions, ...entered });
        cleanups.push(() => child.stop('SIGTERM', 5_000));
        return child;
      },
      connect,
      agent: (agentOptions) => new InsideAgent(agentOptions),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A ServiceAccount bound to the network ClusterRole only, and a kubeconfig carrying its token. */
export async function restrictedKubeconfig(api: TestApiServer): Promise<string> {
  const manifests = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'promsnap-network' } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'network', namespace: 'promsnap-network' } },
    networkClusterRole,
    networkClusterRoleBinding({ kind: 'ServiceAccount', name: 'network', namespace: 'promsnap-network' }),
  ];
  await api.kubectlWith({ input: manifests.map((m) => JSON.stringify(m)).join('\n') }, 'apply', '-f', '-');
  const token = (await api.kubectl('create', 'token', 'network', '-n', 'promsnap-network', '--duration=1h')).stdout.trim();
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${api.url}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: network',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: network',
    '  context: {cluster: test, user: network}',
    'current-context: network',
    '',
  ].join('\n');
}

/** GET/POST through the namespace; the body read whole. */
export function requestInside(
  agent: http.Agent,
  url: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
