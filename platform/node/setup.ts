// What the harness does, as the cluster's admin, before it starts the node process: the controllers'
// service account with its rights (rbac.ts), and a kubeconfig for it reaching the API server the way the
// node's own kubeconfig does (same server and CA), with a token from a TokenRequest.
import { writeFile } from 'node:fs/promises';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { statusOf } from './kube.js';
import { controllersAccount, nodeControllerObjects } from './rbac.js';

export interface NodeIdentityOptions {
  /** The admin's kubeconfig (host side). */
  adminKubeconfig: string;
  /** The node's kubeconfig (system:node:<name>, sandbox side): its server and CA are reused. */
  nodeKubeconfig: string;
  /** Where the controllers' kubeconfig is written. */
  out: string;
  /** Lifetime of the controllers' token; the node lives as long as the cluster. */
  tokenSeconds?: number;
}

/** Applies the controllers' account and rights and writes its kubeconfig; returns options.out. */
export async function prepareNodeIdentity(options: NodeIdentityOptions): Promise<string> {
  const admin = new KubeConfig();
  admin.loadFromFile(options.adminKubeconfig);
  const objects = KubernetesObjectApi.makeApiClient(admin);
  for (const object of nodeControllerObjects() as KubernetesObject[]) {
    try {
      await objects.create(object);
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      await objects.replace(object);
    }
  }
  const answer = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    ...controllersAccount,
    body: { spec: { audiences: [], expirationSeconds: options.tokenSeconds ?? 365 * 24 * 3600 } },
  });
  const token = answer.status?.token;
  if (!token) throw new Error('the API server answered the TokenRequest without a token');

  const node = new KubeConfig();
  node.loadFromFile(options.nodeKubeconfig);
  const cluster = node.getCurrentCluster();
  if (!cluster) throw new Error(`${options.nodeKubeconfig} has no current cluster`);
  const controllers = new KubeConfig();
  controllers.loadFromOptions({
    clusters: [cluster],
    users: [{ name: controllersAccount.name, token }],
    contexts: [{ name: 'promsnap-local-node', cluster: cluster.name, user: controllersAccount.name }],
    currentContext: 'promsnap-local-node',
  });
  await writeFile(options.out, controllers.exportConfig(), { mode: 0o600 });
  return options.out;
}
