// A real Kubernetes API server for tests, in the manner of controller-runtime's envtest
// (pkg/envtest/server.go): etcd and kube-apiserver on loopback, a throwaway admin token and
// service-account key, CRDs installed from folders and waited for, a kubeconfig handed back, and one
// stop() that ends both processes and removes every file. Nothing reconciles (no controller-manager,
// scheduler, kubelet or Knative): objects are stored, validated, admitted and authorized for real.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { cachedBinary, findTool, MissingToolError } from '../tools/find.js';
import { kubectlFor, type KubectlOptions, type KubectlResult } from '../tools/kubectl.js';
import { freePort, retryOnPortClash } from '../tools/ports.js';
import { startProcess, type ManagedProcess } from '../tools/process.js';
import { waitFor } from '../tools/wait.js';
import { toolDir, versions } from '../tools/versions.js';

export { KubectlError, type KubectlOptions, type KubectlResult } from '../tools/kubectl.js';

export interface TestApiServerOptions {
  /**
   * Folders whose CRD manifests are applied before start returns, each CRD waited for until Established
   * and served by discovery. Default: the pinned Knative Serving and Eventing CRDs
   * (knativeCrdDirectoryPaths()); [] installs none.
   */
  crdDirectoryPaths?: string[];
  /** Paths of the binaries; default: the pinned versions in the per-user cache, kubectl from PATH. */
  binaries?: { etcd?: string; kubeApiserver?: string; kubectl?: string };
  /** How long etcd and kube-apiserver each get to become ready, and the CRDs to be served. */
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags (`--name=value`), appended after the harness's own. */
  apiServerArgs?: string[];
  /** Sees every line etcd and kube-apiserver print (for debugging a test). */
  onLine?: (component: 'etcd' | 'kube-apiserver', line: string) => void;
}

export interface TestApiServer {
  /** https://127.0.0.1:PORT (a self-signed serving certificate: clients skip verification). */
  readonly url: string;
  /** A kubeconfig with one context, `promsnap-test`, authenticating as the admin (system:masters). */
  readonly kubeconfigPath: string;
  /** The admin's bearer token. */
  readonly token: string;
  /** The temporary folder holding keys, kubeconfig, etcd data and kubectl's cache; removed by stop(). */
  readonly dir: string;
  /** Environment for child processes that should talk to this server (KUBECONFIG, KUBECACHEDIR). */
  readonly env: NodeJS.ProcessEnv;
  /** Names of the CRDs installed at start. */
  readonly crds: readonly string[];
  /** Milliseconds each start-up phase took, for reporting. */
  readonly timings: { etcdMs: number; apiServerMs: number; crdsMs: number; totalMs: number };
  /** Runs kubectl against this server; throws KubectlError on a non-zero exit. */
  kubectl(...args: string[]): Promise<KubectlResult>;
  /** kubectl with stdin, a working directory, or a non-zero exit returned rather than thrown. */
  kubectlWith(options: KubectlOptions, ...args: string[]): Promise<KubectlResult>;
  /** GET a path on the server as the admin; the body parsed as JSON. */
  getJson<T = unknown>(apiPath: string): Promise<T>;
  /** Stops kube-apiserver, then etcd, and removes the folder. Safe to call more than once. */
  stop(): Promise<void>;
}

/** The pinned Knative release's CRD folders, as provision.sh knative-crds links them into the cache. */
export function knativeCrdDirectoryPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [
    path.join(toolDir('knative-serving-src', env), 'src', 'config', 'core', '300-resources'),
    path.join(toolDir('knative-eventing-src', env), 'src', 'config', 'core', 'resources'),
  ];
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      throw new MissingToolError(
        `Knative Serving ${versions.knativeServing} / Eventing ${versions.knativeEventing} CRDs (${dir})`,
        'bash platform/tools/provision.sh knative-crds',
      );
    }
  }
  return dirs;
}

export async function startTestApiServer(options: TestApiServerOptions = {}): Promise<TestApiServer> {
  const started = Date.now();
  const etcdBinary = options.binaries?.etcd ?? cachedBinary('etcd');
  const apiServerBinary = options.binaries?.kubeApiserver ?? cachedBinary('kube-apiserver');
  const kubectlBinary = options.binaries?.kubectl ?? findTool('kubectl');
  const crdDirs = options.crdDirectoryPaths ?? knativeCrdDirectoryPaths();
  const timeoutMs = options.startTimeoutMs ?? 60_000;

  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-apiserver-'));
  const running: ManagedProcess[] = [];

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // The API server first: stopped after etcd, it would spend its grace period retrying etcd.
      for (const child of [...running].reverse()) await child.stop('SIGTERM', 10_000);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const token = randomBytes(24).toString('hex');
    const tokenFile = path.join(dir, 'tokens.csv');
    await writeFile(tokenFile, `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    // Signs and verifies service-account tokens; without it kube-apiserver refuses to start.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(dir, 'service-account.key');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });

    const etcdStart = Date.now();
    const etcd = await retryOnPortClash(async () => {
      const clientPort = await freePort();
      const peerPort = await freePort();
      const clientUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      // A failed attempt may have left a member's data recorded under its old peer URL.
      await rm(path.join(dir, 'etcd'), { recursive: true, force: true });
      const child = await startProcess({
        name: 'etcd',
        command: etcdBinary,
        args: [
          `--data-dir=${path.join(dir, 'etcd')}`,
          `--listen-client-urls=${clientUrl}`,
          `--advertise-client-urls=${clientUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=default=${peerUrl}`,
          // Throwaway data: skipping fsync makes writes (every apply) much cheaper on a busy disk.
          '--unsafe-no-fsync=true',
          '--log-level=warn',
        ],
        readyUrl: `${clientUrl}/health`,
        readyTimeoutMs: timeoutMs,
        ...(options.onLine ? { onLine: (line: string) => options.onLine!('etcd', line) } : {}),
      });
      return { child, clientUrl };
    });
    running.push(etcd.child);
    const etcdMs = Date.now() - etcdStart;

    const apiStart = Date.now();
    const api = await retryOnPortClash(async () => {
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const child = await startProcess({
        name: 'kube-apiserver',
        command: apiServerBinary,
        args: [
          `--etcd-servers=${etcd.clientUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          // Nothing routes to the API server through the `kubernetes` Service here, and its endpoint
          // reconciler refuses a loopback address.
          '--endpoint-reconciler-type=none',
          `--secure-port=${port}`,
          `--cert-dir=${path.join(dir, 'certs')}`,
          '--authorization-mode=RBAC',
          `--token-auth-file=${tokenFile}`,
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${keyFile}`,
          `--service-account-signing-key-file=${keyFile}`,
          '--service-cluster-ip-range=10.96.0.0/16',
          ...(options.apiServerArgs ?? []),
        ],
        ...(options.onLine ? { onLine: (line: string) => options.onLine!('kube-apiserver', line) } : {}),
      });
      try {
        await waitUntilReady(child, url, token, timeoutMs);
      } catch (err) {
        await child.stop('SIGKILL', 1_000);
        throw err;
      }
      return { child, url };
    });
    running.push(api.child);
    const apiServerMs = Date.now() - apiStart;

    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig(api.url, token), { mode: 0o600 });
    const kubectlCache = path.join(dir, 'kubectl-cache');
    await mkdir(kubectlCache);
    // kubectl's discovery cache is keyed by host:port; a folder of our own keeps ~/.kube clean.
    const env = { ...process.env, KUBECONFIG: kubeconfigPath, KUBECACHEDIR: kubectlCache };

    const kubectl = kubectlFor({ binary: kubectlBinary, env });
    const getJson = async <T>(apiPath: string): Promise<T> => {
      const res = await httpsGet(`${api.url}${apiPath}`, token);
      if (res.status !== 200) throw new Error(`GET ${apiPath}: ${res.status} ${res.body.slice(0, 500)}`);
      return JSON.parse(res.body) as T;
    };

    const crdStart = Date.now();
    const crds = crdDirs.length === 0 ? [] : await installCrds(crdDirs, kubectl.with, getJson, timeoutMs);
    const crdsMs = Date.now() - crdStart;

    return {
      url: api.url,
      kubeconfigPath,
      token,
      dir,
      env,
      crds,
      timings: { etcdMs, apiServerMs, crdsMs, totalMs: Date.now() - started },
      kubectl,
      kubectlWith: kubectl.with,
      getJson,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits for /readyz; fails at once if the process exits, and names the checks still failing on timeout. */
async function waitUntilReady(child: ManagedProcess, url: string, token: string, timeoutMs: number): Promise<void> {
  let lastBody = '';
  try {
    await child.waitUntil(
      async () => {
        const res = await httpsGet(`${url}/readyz?verbose`, token);
        lastBody = res.body;
        return res.status === 200;
      },
      { what: `kube-apiserver at ${url} to be ready`, timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    if (!child.alive) throw err;
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
}

interface CrdList {
  items: Array<{
    metadata: { name: string };
    spec: { group: string; names: { plural: string }; versions: Array<{ name: string; served: boolean }> };
    status?: { conditions?: Array<{ type: string; status: string }> };
  }>;
}

/**
 * Applies every CRD in the folders with one server-side apply, then waits until each is Established
 * and its resources appear in discovery: only then does kubectl find the new kinds.
 */
async function installCrds(
  dirs: string[],
  kubectlWith: (options: KubectlOptions, ...args: string[]) => Promise<KubectlResult>,
  getJson: <T>(apiPath: string) => Promise<T>,
  timeoutMs: number,
): Promise<string[]> {
  const applied = await kubectlWith(
    {},
    'apply',
    '--server-side',
    '--field-manager=promsnap-test',
    ...dirs.flatMap((dir) => ['-f', dir]),
    '-o',
    'name',
  );
  const names = applied.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('customresourcedefinition.apiextensions.k8s.io/'))
    .map((line) => line.slice('customresourcedefinition.apiextensions.k8s.io/'.length));
  if (names.length === 0) throw new Error(`no CustomResourceDefinition found in ${dirs.join(', ')}`);

  const pending = new Set(names);
  await waitFor(
    async () => {
      const list = await getJson<CrdList>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
      for (const crd of list.items) {
        if (!pending.has(crd.metadata.name)) continue;
        const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
        if (!established) continue;
        const served = await Promise.all(
          crd.spec.versions
            .filter((v) => v.served)
            .map(async (v) => {
              const resources = await getJson<{ resources: Array<{ name: string }> }>(
                `/apis/${crd.spec.group}/${v.name}`,
              ).catch(() => ({ resources: [] }));
              return resources.resources.some((r) => r.name === crd.spec.names.plural);
            }),
        );
        if (served.every(Boolean)) pending.delete(crd.metadata.name);
      }
      return pending.size === 0;
    },
    { what: `CRDs established and served: ${[...pending].join(', ')}`, timeoutMs, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nstill pending: ${[...pending].join(', ')}`);
  });
  return names;
}

function kubeconfig(url: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: promsnap-test',
    '  cluster:',
    `    server: ${url}`,
    // The serving certificate is the one kube-apiserver generated for itself in its cert folder.
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: promsnap-test',
    '  context:',
    '    cluster: promsnap-test',
    '    user: admin',
    'current-context: promsnap-test',
    '',
  ].join('\n');
}

function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
