// A tiny volume provisioner in the manner of local-path-provisioner: every pending PersistentVolumeClaim
// without a volume gets a local PersistentVolume on this node, pre-bound by claimRef (the PV controller of
// kube-controller-manager then binds the claim, and `kubectl get pvc` says Bound), whose folder is
// <data dir>/<namespace>/<claim>: a claim of the same name finds its data again in a new cluster on the same
// data dir. A PV whose claim was deleted (Released) is deleted with its folder.
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { Informer } from './informer.js';
import { messageOf, statusOf, type Kube } from './kube.js';

export const provisionerName = 'promsnap.dev/local-node';

/** The folder of a claim's data. */
export function claimPath(dataDir: string, namespace: string, claim: string): string {
  return path.join(dataDir, namespace, claim);
}

/** The PV the provisioner makes for a claim (pure). */
export function volumeFor(claim: V1PersistentVolumeClaim, nodeName: string, dataDir: string): V1PersistentVolume {
  const meta = claim.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: `pvc-${meta.uid}`,
      annotations: { 'pv.kubernetes.io/provisioned-by': provisionerName },
      labels: { 'app.kubernetes.io/managed-by': 'promsnap-node' },
    },
    spec: {
      capacity: { storage: claim.spec?.resources?.requests?.['storage'] ?? '1Gi' },
      accessModes: claim.spec?.accessModes?.length ? claim.spec.accessModes : ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: claim.spec?.storageClassName ?? '',
      volumeMode: 'Filesystem',
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: meta.namespace, name: meta.name, uid: meta.uid },
      local: { path: claimPath(dataDir, meta.namespace ?? 'default', meta.name ?? '') },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] }] } },
    },
  };
}

export class Provisioner {
  private readonly claims: Informer<V1PersistentVolumeClaim>;
  private readonly volumes: Informer<V1PersistentVolume>;
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly kube: Kube,
    private readonly nodeName: string,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {
    const onError = (err: unknown) => log.warn('provisioner watch failed, retrying', { err: messageOf(err) });
    this.claims = new Informer<V1PersistentVolumeClaim>({
      kubeConfig: kube.kubeConfig,
      path: '/api/v1/persistentvolumeclaims',
      type: 'V1PersistentVolumeClaim',
      list: () => kube.core.listPersistentVolumeClaimForAllNamespaces(),
      onUpsert: (claim) => void this.provision(claim),
      onDelete: () => undefined,
      onError,
    });
    this.volumes = new Informer<V1PersistentVolume>({
      kubeConfig: kube.kubeConfig,
      path: '/api/v1/persistentvolumes',
      type: 'V1PersistentVolume',
      labelSelector: 'app.kubernetes.io/managed-by=promsnap-node',
      list: () => kube.core.listPersistentVolume({ labelSelector: 'app.kubernetes.io/managed-by=promsnap-node' }),
      onUpsert: (volume) => void this.reclaim(volume),
      onDelete: () => undefined,
      onError,
    });
  }

  async start(): Promise<void> {
    await this.volumes.start();
    await this.claims.start();
  }

  stop(): void {
    this.claims.stop();
    this.volumes.stop();
  }

  private async provision(claim: V1PersistentVolumeClaim): Promise<void> {
    const uid = claim.metadata?.uid ?? '';
    if (claim.spec?.volumeName || claim.status?.phase !== 'Pending' || claim.metadata?.deletionTimestamp || this.inFlight.has(uid)) return;
    // Claims naming a storage class another provisioner serves are left to it; there is none in the local cluster.
    if (claim.spec?.dataSource || claim.spec?.selector) return;
    this.inFlight.add(uid);
    const volume = volumeFor(claim, this.nodeName, this.dataDir);
    try {
      // World-writable, as local-path-provisioner makes them: any user of the pod may write (fsGroup narrows it).
      await mkdir(volume.spec!.local!.path, { recursive: true });
      await chmod(volume.spec!.local!.path, 0o777);
      await this.kube.core.createPersistentVolume({ body: volume });
      this.log.info('volume provisioned', {
        claim: `${claim.metadata?.namespace}/${claim.metadata?.name}`,
        volume: volume.metadata?.name,
        path: volume.spec?.local?.path,
      });
    } catch (err) {
      if (statusOf(err) !== 409)
        this.log.warn('volume not provisioned', { claim: `${claim.metadata?.namespace}/${claim.metadata?.name}`, err: messageOf(err) });
    } finally {
      this.inFlight.delete(uid);
    }
  }

  private async reclaim(volume: V1PersistentVolume): Promise<void> {
    if (volume.status?.phase !== 'Released' || volume.spec?.persistentVolumeReclaimPolicy !== 'Delete') return;
    const name = volume.metadata?.name ?? '';
    const local = volume.spec?.local?.path;
    try {
      if (local && path.resolve(local).startsWith(path.resolve(this.dataDir) + path.sep)) await rm(local, { recursive: true, force: true });
      await this.kube.core.deletePersistentVolume({ name });
      this.log.info('released volume deleted', { volume: name });
    } catch (err) {
      if (statusOf(err) !== 404) this.log.warn('released volume not deleted', { volume: name, err: messageOf(err) });
    }
  }
}
