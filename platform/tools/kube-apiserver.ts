// kube-apiserver, the one way our code runs it: its flags from a typed config, its version, the CA of
// the serving certificate it generates for itself (cert-dir), and readiness (/readyz, naming the checks
// still failing on timeout), on the host or in a sandbox.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from './command.js';
import { cachedBinary } from './find.js';
import type { Dial } from './forward.js';
import { httpGet } from './http.js';
import { startProcess, type ManagedProcess, type StartOptions } from './process.js';

export interface KubeApiserverConfig {
  etcdServers: string;
  bindAddress: string;
  advertiseAddress: string;
  securePort: number;
  /** Where it writes its self-signed serving certificate (a leaf and the CA that signed it). */
  certDir: string;
  /** CSV of static tokens: `token,user,uid,"group1,group2"`. */
  tokenAuthFile: string;
  /** Signs and verifies service-account tokens; without it kube-apiserver refuses to start. */
  serviceAccountKeyFile: string;
  serviceClusterIpRange: string;
  authorizationModes: string[];
  /** Admission plugins enabled on top of the defaults. */
  admissionPlugins?: string[];
  /** `none` when nothing routes to it through the `kubernetes` Service (a loopback address is refused). */
  endpointReconciler: 'lease' | 'none';
  /** Reach webhooks and aggregated APIs by endpoint IP rather than ClusterIP (no kube-proxy here). */
  aggregatorRouting?: boolean;
  /** Address types tried, in order, to reach a node's kubelet (logs, exec, the node proxy). */
  kubeletAddressTypes?: string[];
  /** Appended last: `--name=value` flags override the ones above. */
  extraArgs?: string[];
}

export const serviceAccountIssuer = 'https://kubernetes.default.svc.cluster.local';

export function kubeApiserverArgs(config: KubeApiserverConfig): string[] {
  return [
    `--etcd-servers=${config.etcdServers}`,
    `--bind-address=${config.bindAddress}`,
    `--advertise-address=${config.advertiseAddress}`,
    `--endpoint-reconciler-type=${config.endpointReconciler}`,
    `--secure-port=${config.securePort}`,
    `--cert-dir=${config.certDir}`,
    `--authorization-mode=${config.authorizationModes.join(',')}`,
    `--token-auth-file=${config.tokenAuthFile}`,
    `--service-account-issuer=${serviceAccountIssuer}`,
    `--service-account-key-file=${config.serviceAccountKeyFile}`,
    `--service-account-signing-key-file=${config.serviceAccountKeyFile}`,
    `--service-cluster-ip-range=${config.serviceClusterIpRange}`,
    ...(config.admissionPlugins?.length ? [`--enable-admission-plugins=${config.admissionPlugins.join(',')}`] : []),
    ...(config.aggregatorRouting ? ['--enable-aggregator-routing=true'] : []),
    ...(config.kubeletAddressTypes?.length ? [`--kubelet-preferred-address-types=${config.kubeletAddressTypes.join(',')}`] : []),
    ...(config.extraArgs ?? []),
  ];
}

/** `--version` of kube-apiserver or kube-controller-manager: "Kubernetes v1.37.2" -> "1.37.2". */
export async function kubernetesBinaryVersion(binary: string): Promise<string> {
  const { stdout } = await runCommand(binary, ['--version']);
  const match = /^Kubernetes v(\S+)/m.exec(stdout);
  if (!match) throw new Error(`unexpected ${path.basename(binary)} --version output: ${stdout.trim()}`);
  return match[1]!;
}

export function kubeApiserverVersion(binary: string = cachedBinary('kube-apiserver')): Promise<string> {
  return kubernetesBinaryVersion(binary);
}

/**
 * The CA of the serving certificate kube-apiserver generated in certDir: the file holds the leaf and
 * then the CA that signed it. Undefined until it has been written (early in start-up).
 */
export function servingCa(certDir: string): string | undefined {
  const file = path.join(certDir, 'apiserver.crt');
  if (!existsSync(file)) return undefined;
  const blocks = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  return blocks.length >= 2 ? blocks[1]!.trimEnd() + '\n' : undefined;
}

export interface StartKubeApiserverOptions {
  config: KubeApiserverConfig;
  binary?: string;
  /** A token that may read /readyz (any authenticated user may). */
  token: string;
  /** The URL readiness is checked at, as seen from where `dial` connects (default: https://bindAddress:securePort). */
  url?: string;
  /** Name the serving certificate is checked against when url's host is not in it. */
  servername?: string;
  enter?: (options: StartOptions) => StartOptions;
  /** How readiness GETs reach it (a sandbox's dial); default a direct connection. */
  dial?: Dial;
  readyTimeoutMs?: number;
  onLine?: (line: string) => void;
}

/**
 * Starts kube-apiserver and resolves once /readyz answers 200 over TLS verified against the CA it
 * generated; fails at once if it exits first, and names the checks not yet passing on timeout.
 */
export async function startKubeApiserver(options: StartKubeApiserverOptions): Promise<ManagedProcess> {
  const { config } = options;
  const start: StartOptions = {
    name: 'kube-apiserver',
    command: options.binary ?? cachedBinary('kube-apiserver'),
    args: kubeApiserverArgs(config),
    ...(options.onLine ? { onLine: options.onLine } : {}),
  };
  const child = await startProcess(options.enter ? options.enter(start) : start);
  const url = options.url ?? `https://${config.bindAddress}:${config.securePort}`;
  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  let lastBody = '';
  try {
    await child.waitUntil(
      async () => {
        const ca = servingCa(config.certDir);
        if (!ca) return false;
        const res = await httpGet(`${url}/readyz?verbose`, {
          ca,
          token: options.token,
          ...(options.servername ? { servername: options.servername } : {}),
          ...(options.dial ? { dial: options.dial } : {}),
        });
        lastBody = res.body;
        return res.status === 200;
      },
      { what: `kube-apiserver at ${url} to be ready`, timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    const stillAlive = child.alive;
    await child.stop('SIGKILL', 1_000);
    if (!stillAlive) throw err;
    const failing = lastBody
      .split('\n')
      .filter((line) => line.startsWith('[-]'))
      .join('\n');
    throw new Error(
      `kube-apiserver at ${url} was not ready after ${timeoutMs} ms` +
        (failing ? `; checks not passing:\n${failing}` : '') +
        `\nlast output:\n${child.recentOutput()}`,
      { cause: err },
    );
  }
  return child;
}
