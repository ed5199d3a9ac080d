// A pod's volumes on the node (the kubelet's volume manager, for the kinds the node supports): each
// volume's folder under the pod's state dir, emptyDir (a tmpfs in the pod's mount namespace for medium
// Memory), ConfigMap/Secret/downwardAPI/projected files written atomically and rewritten when what they
// are made of changes (an object, a refreshed token, the pod's labels), and a claim's folder from its
// bound PersistentVolume. fsGroup makes the volumes the group's.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { V1PersistentVolume, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { runCommand } from '../tools/command.js';
import { findSystemTool } from '../tools/find.js';
import { writeAtomically } from './atomic-writer.js';
import type { DownwardContext } from './env.js';
import type { Kube } from './kube.js';
import type { ObjectCache } from './objects.js';
import { requestToken, type IssuedToken } from './token.js';
import { planVolumes, pluginDir, tokenKey, tokenSpecs, volumePayload, volumeReferences, type VolumePlan } from './volumes.js';

export class VolumeError extends Error {
  constructor(
    message: string,
    /** The kubelet's event reason: FailedMount, or FailedAttachVolume for a claim that is not bound. */
    readonly reason = 'FailedMount',
  ) {
    super(message);
    this.name = 'VolumeError';
  }
}

export interface PodVolumesOptions {
  kube: Kube;
  log: Logger;
  objects: ObjectCache;
  pod: V1Pod;
  podDir: string;
  holderPid: number;
  downward: () => DownwardContext;
  /** Where claims' data lives: a PV's local path must be inside it. */
  dataDir: string;
  /** Called after files changed on disk (nothing to do for the containers: they read the files). */
  onRewrite?: (volume: string) => void;
}

export class PodVolumes {
  /** Volume name -> folder on the node. */
  readonly dirs = new Map<string, string>();
  private plans: VolumePlan[] = [];
  private readonly tokens = new Map<string, IssuedToken>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private ready = false;
  private readonly owner: string;
  /** Writes of the file volumes, one at a time (an object change can arrive while setUp writes). */
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly options: PodVolumesOptions) {
    this.owner = options.pod.metadata?.uid ?? '';
  }

  /** Sets every volume up; throws a VolumeError naming the first one that cannot be (retried by the caller). */
  async setUp(pod: V1Pod): Promise<void> {
    const planned = planVolumes(pod);
    if ('error' in planned) throw new VolumeError(planned.error);
    this.plans = planned.plans;
    const fsGroup = pod.spec?.securityContext?.fsGroup;
    for (const plan of this.plans) {
      if (plan.kind === 'claim') {
        this.dirs.set(plan.name, await this.claimDir(pod, plan.claimName));
        continue;
      }
      const dir = path.join(this.options.podDir, 'volumes', pluginDir(plan), plan.name);
      if (!this.dirs.has(plan.name)) {
        await mkdir(dir, { recursive: true });
        if (plan.kind === 'emptyDir') {
          if (plan.memory)
            await runCommand(findSystemTool('mount'), ['-N', `/proc/${this.options.holderPid}/ns/mnt`, '-t', 'tmpfs', '-o', 'mode=0777', 'tmpfs', dir]);
          // The kubelet makes emptyDir world-writable: containers of any user share it.
          else await chmod(dir, 0o777);
          if (fsGroup !== undefined) await this.groupOwn(dir, fsGroup);
        }
        this.dirs.set(plan.name, dir);
      }
    }
    await this.refreshTokens(pod);
    await this.serialised(() => this.writeFiles(pod));
    this.ready = true;
    this.scheduleTokenRefresh();
  }

  /** Rewrites the file volumes (an object or the pod's metadata changed); failures are logged, the old files stay. */
  async rewrite(pod: V1Pod): Promise<void> {
    if (this.closed || !this.ready) return;
    try {
      await this.serialised(() => this.writeFiles(pod));
    } catch (err) {
      this.options.log.warn('volume files not updated', { pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: (err as Error).message });
    }
  }

  /** Whether this pod's volumes read that object. */
  uses(kind: 'ConfigMap' | 'Secret', name: string, pod: V1Pod): boolean {
    const refs = volumeReferences(pod);
    return (kind === 'ConfigMap' ? refs.configMaps : refs.secrets).includes(name);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    this.options.objects.release(this.owner);
  }

  private serialised(write: () => Promise<void>): Promise<void> {
    const next = this.writes.then(write);
    this.writes = next.catch(() => undefined);
    return next;
  }

  private async writeFiles(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const refs = volumeReferences(pod);
    const configMaps = new Map<string, { data?: Record<string, string>; binaryData?: Record<string, string> }>();
    const secrets = new Map<string, { data?: Record<string, string> }>();
    for (const name of refs.configMaps) {
      const found = await this.options.objects.configMap(namespace, name, this.owner);
      if (found) configMaps.set(name, { ...(found.data ? { data: found.data } : {}), ...(found.binaryData ? { binaryData: found.binaryData } : {}) });
    }
    for (const name of refs.secrets) {
      const found = await this.options.objects.secret(namespace, name, this.owner);
      if (found) secrets.set(name, { ...(found.data ? { data: found.data } : {}) });
    }
    const tokens = new Map([...this.tokens].map(([key, issued]) => [key, issued.token]));
    const objects = { configMaps, secrets, tokens, downward: this.options.downward() };
    const fsGroup = pod.spec?.securityContext?.fsGroup;
    for (const volume of pod.spec?.volumes ?? []) {
      const plan = this.plans.find((p) => p.name === volume.name);
      if (plan?.kind !== 'files') continue;
      const result = volumePayload(volume, objects);
      if ('error' in result) throw new VolumeError(result.error);
      const changed = await writeAtomically(this.dirs.get(volume.name)!, result.payload, fsGroup !== undefined ? { fsGroup } : {});
      if (changed) this.options.onRewrite?.(volume.name);
    }
  }

  private async refreshTokens(pod: V1Pod): Promise<void> {
    const now = Date.now();
    for (const spec of tokenSpecs(pod)) {
      const key = tokenKey(spec);
      const held = this.tokens.get(key);
      if (held && held.refreshAtMs > now) continue;
      try {
        this.tokens.set(key, await requestToken(this.options.kube, pod, spec, now));
      } catch (err) {
        // A token that can still be used is kept; the next attempt comes soon.
        if (!held) throw new VolumeError(`MountVolume.SetUp failed: failed to fetch token: ${(err as Error).message}`);
        this.options.log.warn('service account token not refreshed', { pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: (err as Error).message });
      }
    }
  }

  private scheduleTokenRefresh(): void {
    clearTimeout(this.refreshTimer);
    if (this.closed || this.tokens.size === 0) return;
    const next = Math.min(...[...this.tokens.values()].map((t) => t.refreshAtMs));
    this.refreshTimer = setTimeout(
      () => {
        void (async () => {
          const pod = this.options.pod;
          await this.refreshTokens(pod).catch((err: Error) => this.options.log.warn('token refresh failed', { err: err.message }));
          await this.rewrite(pod);
          this.scheduleTokenRefresh();
        })();
      },
      Math.max(5_000, next - Date.now()),
    );
    this.refreshTimer.unref();
  }

  private async claimDir(pod: V1Pod, claimName: string): Promise<string> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const claim = await this.options.kube.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace }).catch(() => undefined);
    if (!claim) throw new VolumeError(`persistentvolumeclaim "${claimName}" not found`);
    const volumeName = claim.spec?.volumeName;
    if (!volumeName || claim.status?.phase !== 'Bound') throw new VolumeError(`persistentvolumeclaim "${claimName}" is not bound yet`, 'FailedMount');
    const volume: V1PersistentVolume = await this.options.kube.core.readPersistentVolume({ name: volumeName });
    const local = volume.spec?.local?.path ?? volume.spec?.hostPath?.path;
    if (!local) throw new VolumeError(`persistentvolume "${volumeName}" is neither local nor hostPath: the local node cannot mount it`);
    const resolved = path.resolve(local);
    if (!resolved.startsWith(path.resolve(this.options.dataDir) + path.sep)) {
      throw new VolumeError(`persistentvolume "${volumeName}" points at ${local}, outside the node's data dir ${this.options.dataDir}`);
    }
    if (!existsSync(resolved)) {
      await mkdir(resolved, { recursive: true });
      await chmod(resolved, 0o777);
    }
    const fsGroup = pod.spec?.securityContext?.fsGroup;
    if (fsGroup !== undefined) await this.groupOwn(resolved, fsGroup);
    return resolved;
  }

  private async groupOwn(dir: string, gid: number): Promise<void> {
    await chown(dir, -1, gid).catch(() => undefined);
    await chmod(dir, 0o2777).catch(() => undefined);
  }
}
