// A real Kubernetes API server for tests, in the manner of controller-runtime's envtest: the loopback
// placement of platform/controlplane (etcd and kube-apiserver on loopback, a throwaway admin token and
// service-account key, CRDs installed from folders and waited for, a kubeconfig handed back, one stop()
// that ends both processes and removes every file). Nothing reconciles (no controller-manager,
// scheduler, kubelet or Knative): objects are stored, validated, admitted and authorized for real.
import { knativeCrdDirectoryPaths, startControlPlane } from '../controlplane/index.js';
import type { KubectlOptions, KubectlResult } from '../tools/kubectl.js';

export { KubectlError, type KubectlOptions, type KubectlResult } from '../tools/kubectl.js';
export { knativeCrdDirectoryPaths } from '../controlplane/index.js';

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
  /** https://127.0.0.1:PORT; its self-generated certificate is verified by the kubeconfig's CA. */
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

export async function startTestApiServer(options: TestApiServerOptions = {}): Promise<TestApiServer> {
  const onLine = options.onLine;
  const controlPlane = await startControlPlane({
    placement: 'loopback',
    crdDirectoryPaths: options.crdDirectoryPaths ?? knativeCrdDirectoryPaths(),
    ...(options.binaries ? { binaries: options.binaries } : {}),
    ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
    ...(options.apiServerArgs ? { apiServerArgs: options.apiServerArgs } : {}),
    ...(onLine ? { onLine: (component, line) => component !== 'kube-controller-manager' && onLine(component, line) } : {}),
  });
  const { etcdMs, apiServerMs, crdsMs, totalMs } = controlPlane.timings;
  return {
    url: controlPlane.url,
    kubeconfigPath: controlPlane.kubeconfigPath,
    token: controlPlane.token,
    dir: controlPlane.dir,
    env: controlPlane.env,
    crds: controlPlane.crds,
    timings: { etcdMs, apiServerMs, crdsMs, totalMs },
    kubectl: controlPlane.kubectl,
    kubectlWith: controlPlane.kubectl.with,
    getJson: (apiPath) => controlPlane.getJson(apiPath),
    stop: () => controlPlane.stop(),
  };
}
