// One pod on the node, from binding to the final delete (the kubelet's pod worker, and virtual-kubelet's
// rule that the node ends a Terminating pod): its sandbox (namespaces, veth, IP), its volumes, the init
// containers in order, then every container with its restarts; the status after every change; and on
// deletion preStop, SIGTERM, the grace period, SIGKILL, the sandbox gone, and delete with grace 0 and the
// pod's uid as precondition. A pod that finishes (a Job's) releases its sandbox and keeps its status.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import type { BackOff } from './backoff.js';
import { ContainerRunner, type PodContext, type RunOutcome } from './container-runner.js';
import type { DownwardContext } from './env.js';
import { hostsFile, podHostname, resolvConf, userFiles, type DnsSettings } from './etc-files.js';
import type { EventRecorder } from './events.js';
import type { ImageStore } from './images.js';
import type { PodIpam } from './ipam.js';
import { deleteBody, messageOf, statusOf, strategicMergePatch, type Kube } from './kube.js';
import type { ContainerSample, NodeMetrics } from './metrics.js';
import type { ObjectCache } from './objects.js';
import { startPodSandbox, type BridgeInfo, type PodSandbox } from './pod-network.js';
import { PodVolumes, VolumeError } from './pod-volumes.js';
import type { Privilege } from './security.js';
import { apiTime, podStatus, type PodStatusPatch } from './status.js';

/** What all pod workers share. */
export interface NodeRuntime {
  kube: Kube;
  log: Logger;
  metrics: NodeMetrics;
  events: EventRecorder;
  objects: ObjectCache;
  images: ImageStore;
  ipam: PodIpam;
  crashBackOff: BackOff;
  imageBackOff: BackOff;
  nodeName: string;
  nodeIp: string;
  bridge: BridgeInfo;
  dns: DnsSettings;
  stateDir: string;
  dataDir: string;
  privilege: Privilege;
  allocatable: Record<string, string>;
  services(): readonly V1Service[];
}

type Stage = 'starting' | 'running' | 'finished' | 'terminating' | 'gone';

/** The kubelet's PLEG relist period: how soon after a change a pod is synced again. */
const relistMs = 1_000;

/** How often a pod whose volumes cannot be set up is tried again (the kubelet's volume manager retries too). */
const volumeRetryMs = 5_000;

export class PodWorker {
  private pod: V1Pod;
  private stage: Stage = 'starting';
  private sandbox: PodSandbox | undefined;
  private podIp: string | undefined;
  /** The address this pod holds in the IPAM until its sandbox is gone (podIp stays for the status). */
  private ipHeld: string | undefined;
  private volumes: PodVolumes | undefined;
  private readonly init: ContainerRunner[] = [];
  private readonly containers: ContainerRunner[] = [];
  private readonly stopping = new AbortController();
  private readonly seenAt = Date.now();
  private readonly startTime = apiTime(this.seenAt);
  private lastConditions: PodStatusPatch['conditions'] | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private relistTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private dirty = false;
  private terminal = false;
  private shutdownReason: { reason: string; message: string } | undefined;
  private termination: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  readonly log: Logger;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly runtime: NodeRuntime,
    pod: V1Pod,
  ) {
    this.pod = pod;
    this.log = runtime.log.child({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, uid: pod.metadata?.uid });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get namespace(): string {
    return this.pod.metadata?.namespace ?? 'default';
  }

  get uid(): string {
    return this.pod.metadata?.uid ?? '';
  }

  private get podDir(): string {
    return path.join(this.runtime.stateDir, 'pods', this.uid);
  }

  start(): void {
    this.started ??= (async () => {
      for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
        try {
          return await this.run();
        } catch (err) {
          const message = (err as Error).message;
          this.log.error('pod could not be set up', { err: message, attempt });
          this.runtime.events.pod(this.pod, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${message}`);
          await this.release();
          await this.sleep(Math.min(10_000 * attempt, 60_000));
        }
      }
    })();
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** A newer version of the pod from the API server. */
  update(pod: V1Pod): void {
    const labelsChanged =
      JSON.stringify([pod.metadata?.labels, pod.metadata?.annotations]) !== JSON.stringify([this.pod.metadata?.labels, this.pod.metadata?.annotations]);
    this.pod = pod;
    if (labelsChanged) void this.volumes?.rewrite(pod);
    if (pod.metadata?.deletionTimestamp)
      void this.terminate((pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000, true);
  }

  /** An object the pod's volumes read changed. */
  objectChanged(kind: 'ConfigMap' | 'Secret', name: string): void {
    if (this.volumes?.uses(kind, name, this.pod)) void this.volumes.rewrite(this.pod);
  }

  /** The pod is no longer in the API server (deleted outright): stop it quickly, nothing left to delete. */
  gone(): void {
    void this.terminate(Math.min((this.pod.metadata?.deletionGracePeriodSeconds ?? 2) * 1000, 2_000), false);
  }

  private async run(): Promise<void> {
    const pod = this.pod;
    if (pod.spec?.hostNetwork) throw new Error('hostNetwork pods are not supported by the local node');
    const sidecar = (pod.spec?.initContainers ?? []).find((c) => c.restartPolicy === 'Always');
    if (sidecar) throw new Error(`init container ${sidecar.name} is a sidecar (restartPolicy: Always), which the local node does not run`);

    this.podIp = this.runtime.ipam.allocate();
    this.ipHeld = this.podIp;
    this.init.length = 0;
    this.containers.length = 0;
    this.sandbox = await startPodSandbox({ podIp: this.podIp, nodeIp: this.runtime.nodeIp, bridge: this.runtime.bridge, hostname: podHostname(pod) });
    this.log.info('pod sandbox ready', { podIP: this.podIp, veth: this.sandbox.veth });
    const context = this.context();
    for (const spec of pod.spec?.initContainers ?? []) this.init.push(new ContainerRunner(context, spec, true));
    for (const spec of pod.spec?.containers ?? []) this.containers.push(new ContainerRunner(context, spec, false));
    this.changed();

    this.volumes = new PodVolumes({
      kube: this.runtime.kube,
      log: this.log,
      objects: this.runtime.objects,
      pod,
      podDir: this.podDir,
      holderPid: this.sandbox.holderPid,
      downward: () => this.downward(),
      dataDir: this.runtime.dataDir,
    });
    for (;;) {
      if (this.stopping.signal.aborted) return;
      try {
        await this.volumes.setUp(this.pod);
        break;
      } catch (err) {
        if (!(err instanceof VolumeError)) throw err;
        this.log.warn('volumes not ready', { err: err.message });
        this.runtime.events.pod(this.pod, 'Warning', err.reason, err.message);
        await this.sleep(volumeRetryMs);
      }
    }

    for (const runner of this.init) {
      const outcome = await runner.run();
      if (outcome === 'stopped') return;
      if (outcome === 'failed') return this.finish();
      runner.view = { ...runner.view, ready: true };
      this.changed();
    }
    if (this.stopping.signal.aborted) return;
    this.stage = 'running';
    void this.observeStart();
    const outcomes: RunOutcome[] = await Promise.all(this.containers.map((runner) => runner.run()));
    if (!outcomes.includes('stopped')) await this.finish();
  }

  /** The pod start SLI: from the node seeing the pod to every container running for the first time. */
  private async observeStart(): Promise<void> {
    while (!this.stopping.signal.aborted && !this.containers.every((r) => r.running || 'terminated' in r.view.state)) await this.sleep(50);
    if (!this.stopping.signal.aborted) this.runtime.metrics.podStartDuration.observe((Date.now() - this.seenAt) / 1000);
  }

  /** Running containers, for /metrics/cadvisor. */
  samples(): ContainerSample[] {
    return [...this.init, ...this.containers].map((r) => r.sample()).filter((s): s is ContainerSample => s !== undefined);
  }

  get latest(): V1Pod {
    return this.pod;
  }

  get hasSandbox(): boolean {
    return this.sandbox !== undefined;
  }

  /** Every container is done for good: release the sandbox, keep the status (Succeeded or Failed). */
  private async finish(): Promise<void> {
    if (this.stage === 'terminating') return;
    this.stage = 'finished';
    this.terminal = true;
    this.log.info('pod finished');
    await this.release();
    this.changed();
    await this.flushStatus();
  }

  /**
   * Stops the pod: every running container killed in parallel within the grace period, then the sandbox
   * and the pod's files. With `deleteAfter`, the pod is then deleted from the API server (grace 0, uid
   * precondition). A second call may only shorten the grace.
   */
  terminate(graceMs: number, deleteAfter: boolean): Promise<void> {
    if (this.termination) return this.termination;
    this.stage = 'terminating';
    this.stopping.abort();
    this.termination = (async () => {
      this.log.info('stopping pod', { graceMs, deleteAfter });
      await Promise.all(
        [...this.init, ...this.containers].map(async (runner) => {
          if (!runner.running) return;
          this.runtime.events.pod(this.pod, 'Normal', 'Killing', `Stopping container ${runner.spec.name}`, runner.spec.name);
          await runner.kill(graceMs);
        }),
      );
      // The run loop ends once its waits see the abort; wait for it so nothing starts after this point.
      await this.started;
      for (const runner of [...this.init, ...this.containers]) runner.stopProbes();
      await this.release();
      if (deleteAfter) {
        this.terminal = true;
        await this.flushStatus();
        await this.finalDelete();
      }
      this.stage = 'gone';
      this.resolveDone();
    })();
    return this.termination;
  }

  /** Stops the pod because the node is going away, and says so (the kubelet's graceful node shutdown). */
  async shutDown(graceMs: number): Promise<void> {
    await this.terminate(graceMs, false);
    this.terminal = true;
    this.shutdownReason = { reason: 'Terminated', message: 'Pod was terminated in response to imminent node shutdown.' };
    this.dirty = true;
    await this.flushStatus();
  }

  private async release(): Promise<void> {
    clearTimeout(this.relistTimer);
    for (const runner of [...this.init, ...this.containers]) if (runner.running) await runner.kill(0, false);
    if (this.sandbox) {
      await this.sandbox.stop();
      this.sandbox = undefined;
    }
    if (this.ipHeld) {
      this.runtime.ipam.release(this.ipHeld);
      this.ipHeld = undefined;
    }
    this.volumes?.close();
    this.runtime.crashBackOff.forgetPrefix(`${this.uid}/`);
    this.runtime.imageBackOff.forgetPrefix(`${this.uid}/`);
    await rm(this.podDir, { recursive: true, force: true }).catch((err: Error) => this.log.warn('pod dir not removed', { err: err.message }));
  }

  private async finalDelete(): Promise<void> {
    const meta = this.pod.metadata ?? {};
    try {
      await this.runtime.kube.core.deleteNamespacedPod({ name: meta.name ?? '', namespace: meta.namespace ?? 'default', body: deleteBody(0, meta.uid) });
      this.log.info('pod deleted');
    } catch (err) {
      // Gone already, or a new pod of the same name (the uid precondition protects it).
      if (statusOf(err) !== 404 && statusOf(err) !== 409) this.log.warn('final delete failed', { err: messageOf(err) });
    }
  }

  // ----- context handed to the containers

  private context(): PodContext {
    const sandbox = this.sandbox!;
    const users = new Map<string, { uid: number; gid: number }>();
    return {
      log: this.log,
      metrics: this.runtime.metrics,
      events: this.runtime.events,
      objects: this.runtime.objects,
      images: this.runtime.images,
      crashBackOff: this.runtime.crashBackOff,
      imageBackOff: this.runtime.imageBackOff,
      privilege: this.runtime.privilege,
      holderPid: sandbox.holderPid,
      podIp: sandbox.podIp,
      podDir: this.podDir,
      stopping: this.stopping.signal,
      pod: () => this.pod,
      downward: () => this.downward(),
      services: () => this.runtime.services(),
      volumeDirs: () => this.volumes?.dirs ?? new Map(),
      etcFor: (user) => {
        users.set(`${user.uid}:${user.gid}`, user);
        const { passwd, group } = userFiles([...users.values()]);
        return {
          hosts: hostsFile(this.pod, sandbox.podIp, this.runtime.dns.clusterDomain),
          resolvConf: resolvConf(this.pod, this.runtime.dns),
          hostname: podHostname(this.pod),
          passwd,
          group,
        };
      },
      changed: () => this.changed(),
    };
  }

  private downward(): DownwardContext {
    return { pod: this.pod, podIP: this.podIp, hostIP: this.runtime.nodeIp, allocatable: this.runtime.allocatable };
  }

  // ----- status

  /**
   * Something changed: the status is written soon, changes close together in one patch; and a moment later
   * unready containers are probed again, as the kubelet's pod sync after a PLEG relist (1 s) triggers them.
   */
  private changed(): void {
    this.dirty = true;
    if (!this.relistTimer && this.stage !== 'gone') {
      this.relistTimer = setTimeout(() => {
        this.relistTimer = undefined;
        for (const runner of this.containers) runner.triggerReadiness();
      }, relistMs);
    }
    if (this.statusTimer || this.stage === 'gone') return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      void this.flushStatus();
    }, 20);
  }

  private async flushStatus(): Promise<void> {
    while (this.writing) await this.writing;
    if (!this.dirty && !this.terminal) return;
    this.dirty = false;
    this.writing = this.writeStatus().finally(() => (this.writing = undefined));
    await this.writing;
  }

  private async writeStatus(): Promise<void> {
    const view = podStatus({
      pod: this.pod,
      hostIP: this.runtime.nodeIp,
      podIP: this.podIp,
      startTime: this.startTime,
      initContainers: this.init.map((r) => r.view),
      containers: this.containers.map((r) => r.view),
      sandboxReady: this.sandbox !== undefined,
      terminal: this.terminal,
      ...(this.shutdownReason ? { reason: this.shutdownReason } : {}),
      ...(this.lastConditions ? { previousConditions: this.lastConditions } : {}),
      now: apiTime(Date.now()),
    });
    this.lastConditions = view.conditions;
    const meta = this.pod.metadata ?? {};
    try {
      await this.runtime.kube.core.patchNamespacedPodStatus(
        { name: meta.name ?? '', namespace: meta.namespace ?? 'default', body: { status: view } },
        strategicMergePatch,
      );
    } catch (err) {
      if (statusOf(err) !== 404) this.log.warn('status not written', { err: messageOf(err) });
    }
  }
}
