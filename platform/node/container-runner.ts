// One container of a pod through its life, as the kubelet's runtime manager drives it: image (from the
// image map; ErrImagePull and ImagePullBackOff when the node has none), environment, user, mounts and root,
// Created/Started, postStart, its probes, and after each exit the restart policy with the crash-loop
// back-off. Killing runs preStop within the grace period, then SIGTERM, then SIGKILL at the deadline.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { V1Container, V1Pod, V1Probe, V1Service } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { goDuration, type BackOff } from './backoff.js';
import { enterArgs, startContainer, type ContainerExit, type ContainerProcess } from './containers.js';
import { containerEnv, envReferences, serviceEnv, type DownwardContext } from './env.js';
import type { EtcFiles } from './rootfs.js';
import { buildRoot, removeRoot } from './rootfs.js';
import type { EventRecorder } from './events.js';
import { runHook, runProbe, type ExecInContainer } from './handlers.js';
import { findImage, imageId, unknownImageMessage, type ImageLayout, type ImageStore } from './images.js';
import { launchFor, type Launch } from './launch.js';
import type { NodeMetrics, ContainerSample } from './metrics.js';
import type { ObjectCache } from './objects.js';
import { containerReady, containerStarted, probeTiming, ProbeWorker, type ProbeType } from './probes.js';
import { parseQuantity } from './quantity.js';
import { podRef, securityFor, type Privilege, type RunAs } from './security.js';
import { apiTime, containerShouldRestart, type ContainerView, type TerminatedState } from './status.js';
import { containerMounts } from './volumes.js';

/** What every container of a pod shares, handed in by the pod worker. */
export interface PodContext {
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  readonly events: EventRecorder;
  readonly objects: ObjectCache;
  readonly images: ImageStore;
  readonly crashBackOff: BackOff;
  readonly imageBackOff: BackOff;
  readonly privilege: Privilege;
  readonly holderPid: number;
  readonly podIp: string;
  readonly podDir: string;
  /** Aborted when the pod is being stopped: every wait ends. */
  readonly stopping: AbortSignal;
  pod(): V1Pod;
  downward(): DownwardContext;
  services(): readonly V1Service[];
  volumeDirs(): ReadonlyMap<string, string>;
  /** /etc files for a container running as this user. */
  etcFor(user: { uid: number; gid: number }): EtcFiles;
  /** Something in the container's status changed: the pod worker writes the pod's status. */
  changed(): void;
}

/** How long ErrImagePull shows before the next sync turns it into ImagePullBackOff. */
const imagePullSyncMs = 2_000;

/** How long a container waits before the node tries again after a configuration error (the kubelet's sync back-off start). */
const configRetryMs = 10_000;

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
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

export type RunOutcome = 'completed' | 'failed' | 'stopped';

export class ContainerRunner {
  view: ContainerView;
  private process: ContainerProcess | undefined;
  private runAs: RunAs | undefined;
  private launch: Launch | undefined;
  private rootPath: string | undefined;
  private rootMounted = false;
  private attempt = 0;
  private pullError = '';
  private readonly probes: Partial<Record<ProbeType, { worker: ProbeWorker; spec: V1Probe; timer?: NodeJS.Timeout; busy: boolean }>> = {};
  private killing: Promise<void> | undefined;
  private warned = new Set<string>();

  constructor(
    private readonly ctx: PodContext,
    readonly spec: V1Container,
    readonly init: boolean,
  ) {
    this.view = {
      name: spec.name,
      image: spec.image ?? '',
      imageID: '',
      state: { waiting: { reason: init || !(ctx.pod().spec?.initContainers ?? []).length ? 'ContainerCreating' : 'PodInitializing' } },
      restartCount: 0,
      ready: false,
      started: false,
    };
    if (init) this.view.state = { waiting: { reason: 'PodInitializing' } };
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  /** What /metrics/cadvisor reports of this container while it runs. */
  sample(): ContainerSample | undefined {
    const process = this.process;
    if (!process?.running) return undefined;
    const pod = this.ctx.pod();
    const limit = this.spec.resources?.limits?.['memory'];
    return {
      namespace: pod.metadata?.namespace ?? '',
      pod: pod.metadata?.name ?? '',
      podUid: pod.metadata?.uid ?? '',
      container: this.spec.name,
      containerId: (this.view.containerID ?? '').replace(/^promsnap:\/\//, ''),
      image: this.spec.image ?? '',
      pid: process.pid,
      startedAtMs: process.startedAtMs,
      memoryLimitBytes: limit ? Math.round(parseQuantity(limit)) : 0,
    };
  }

  private get key(): string {
    return `${this.ctx.pod().metadata?.uid}/${this.spec.name}`;
  }

  private get rootDir(): string {
    return path.join(this.ctx.podDir, 'roots', this.spec.name);
  }

  /** Whether an exit with this code is followed by a restart. Init containers restart only on failure. */
  willRestart(exitCode: number): boolean {
    const policy = this.ctx.pod().spec?.restartPolicy;
    if (this.init) return exitCode !== 0 && containerShouldRestart(this.spec, policy === 'Always' ? 'OnFailure' : policy, exitCode);
    return containerShouldRestart(this.spec, policy, exitCode);
  }

  /** Runs the container until it is done for good (or the pod stops): restarts included. */
  async run(): Promise<RunOutcome> {
    const { stopping } = this.ctx;
    for (;;) {
      if (stopping.aborted) return 'stopped';
      const waitMs = await this.start();
      if (waitMs !== undefined) {
        await abortableSleep(waitMs, stopping);
        continue;
      }
      const exit = await this.process!.exited;
      await this.exited(exit);
      if (stopping.aborted) return 'stopped';
      if (!this.willRestart(exit.exitCode)) return exit.exitCode === 0 ? 'completed' : 'failed';
      for (;;) {
        const decision = this.ctx.crashBackOff.attempt(this.key, exit.finishedAtMs, Date.now());
        if (decision.start) break;
        const message = `back-off ${goDuration(decision.backOffMs)} restarting failed container=${this.spec.name} pod=${podRef(this.ctx.pod())}`;
        this.setWaiting('CrashLoopBackOff', message);
        this.ctx.events.pod(
          this.ctx.pod(),
          'Warning',
          'BackOff',
          `Back-off restarting failed container ${this.spec.name} in pod ${podRef(this.ctx.pod())}`,
          this.spec.name,
        );
        await abortableSleep(decision.retryInMs, stopping);
        if (stopping.aborted) return 'stopped';
      }
    }
  }

  /** Starts the container once; returns how long to wait before trying again when it could not. */
  private async start(): Promise<number | undefined> {
    const pod = this.ctx.pod();
    const pulled = await this.pull();
    if ('retryInMs' in pulled) return pulled.retryInMs;
    const { image } = pulled;

    const prepared = await this.prepare(pod, image);
    if ('error' in prepared) {
      this.setWaiting(prepared.reason, prepared.error);
      this.ctx.events.pod(pod, 'Warning', 'Failed', `Error: ${prepared.error}`, this.spec.name);
      return configRetryMs;
    }
    const { runAs, launch } = prepared;
    for (const warning of runAs.warnings) {
      if (this.warned.has(warning)) continue;
      this.warned.add(warning);
      this.ctx.events.pod(pod, 'Warning', 'SecurityContextNotApplied', warning, this.spec.name);
    }

    try {
      if (this.rootMounted) await removeRoot(this.ctx.holderPid, this.rootDir);
      this.rootPath = undefined;
      this.rootMounted = true;
      const mounts = containerMounts(this.spec, pod, this.ctx.volumeDirs(), launch.env);
      if ('error' in mounts) throw new Error(mounts.error);
      this.rootPath = await buildRoot({
        holderPid: this.ctx.holderPid,
        dir: this.rootDir,
        image,
        etc: this.ctx.etcFor(runAs),
        mounts: mounts.mounts,
        readOnly: runAs.readOnlyRootFilesystem,
      });
    } catch (err) {
      const message = (err as Error).message;
      this.setWaiting('CreateContainerError', message);
      this.ctx.events.pod(pod, 'Warning', 'Failed', `Error: ${message}`, this.spec.name);
      return configRetryMs;
    }

    this.ctx.events.pod(pod, 'Normal', 'Created', `Created container: ${this.spec.name}`, this.spec.name);
    const previous =
      'terminated' in this.view.state ? this.view.state.terminated : 'terminated' in (this.view.lastState ?? {}) ? this.view.lastState!.terminated : undefined;
    this.attempt++;
    try {
      this.process = await startContainer({
        holderPid: this.ctx.holderPid,
        root: this.rootPath,
        launch,
        uid: runAs.uid,
        gid: runAs.gid,
        switchUser: this.ctx.privilege === 'root',
        noNewPrivs: runAs.noNewPrivs,
        logFile: this.logFile(),
      });
    } catch (err) {
      const message = `failed to start container: ${(err as Error).message}`;
      this.setWaiting('RunContainerError', message);
      this.ctx.events.pod(pod, 'Warning', 'Failed', `Error: ${message}`, this.spec.name);
      return configRetryMs;
    }
    // The pod began stopping while this container was being made: it does not get to run.
    if (this.ctx.stopping.aborted) this.process.kill();
    const restarted = previous !== undefined;
    this.view = {
      ...this.view,
      imageID: imageId(image),
      containerID: `promsnap://${randomBytes(32).toString('hex')}`,
      state: { running: { startedAt: apiTime(this.process.startedAtMs) } },
      restartCount: this.view.restartCount + (restarted ? 1 : 0),
      ready: false,
      started: false,
      user: { linux: { uid: runAs.uid, gid: runAs.gid, supplementalGroups: [runAs.gid] } },
      ...(previous ? { lastState: { terminated: previous } } : {}),
    };
    this.ctx.events.pod(pod, 'Normal', 'Started', `Started container ${this.spec.name}`, this.spec.name);
    this.ctx.metrics.startedContainers.inc({ container_type: this.init ? 'init_container' : 'container' });
    this.ctx.log.info('container started', {
      pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`,
      container: this.spec.name,
      pid: this.process.pid,
      restartCount: this.view.restartCount,
    });
    // The probe workers exist before readiness is first computed: a container with a readiness probe is not ready until it passes.
    this.startProbes();
    this.refreshReadiness();

    const postStart = this.spec.lifecycle?.postStart;
    if (postStart) {
      const outcome = await runHook(postStart, this.spec, this.ctx.podIp, this.execInContainer(), this.graceMs(), this.ctx.stopping);
      if (outcome.result !== 'success') {
        this.ctx.events.pod(pod, 'Warning', 'FailedPostStartHook', `PostStartHook failed: ${outcome.output}`, this.spec.name);
        void this.kill(this.graceMs(), false);
      }
    }
    return undefined;
  }

  /**
   * The image layout, or how long to wait after recording ErrImagePull (a "pull" that found no local build)
   * or ImagePullBackOff (waiting out the image back-off before the next try), as the kubelet alternates them.
   */
  private async pull(): Promise<{ image: ImageLayout } | { retryInMs: number }> {
    const pod = this.ctx.pod();
    const reference = this.spec.image ?? '';
    const key = `${this.key}/image`;
    const waitMs = this.ctx.imageBackOff.remaining(key, Date.now());
    if (waitMs > 0) {
      this.setWaiting('ImagePullBackOff', `Back-off pulling image "${reference}": ErrImagePull: ${this.pullError}`);
      this.ctx.events.pod(pod, 'Normal', 'BackOff', `Back-off pulling image "${reference}"`, this.spec.name);
      return { retryInMs: waitMs };
    }
    let layouts: ImageLayout[];
    try {
      layouts = await this.ctx.images.current();
    } catch (err) {
      layouts = [];
      this.ctx.log.error('image map unreadable', { store: this.ctx.images.dir, err: (err as Error).message });
    }
    const image = findImage(layouts, reference);
    if (image) {
      this.ctx.imageBackOff.forget(key);
      this.ctx.events.pod(pod, 'Normal', 'Pulled', `Container image "${reference}" already present on machine`, this.spec.name);
      return { image };
    }
    const message = unknownImageMessage(reference, layouts);
    this.pullError = message;
    this.setWaiting('ErrImagePull', message);
    this.ctx.events.pod(pod, 'Warning', 'Failed', `Failed to pull image "${reference}": ${message}`, this.spec.name);
    this.ctx.events.pod(pod, 'Warning', 'Failed', 'Error: ErrImagePull', this.spec.name);
    this.ctx.imageBackOff.failed(key, Date.now());
    // The kubelet's next pod sync, a moment later, shows the back-off.
    return { retryInMs: imagePullSyncMs };
  }

  private async prepare(pod: V1Pod, image: ImageLayout): Promise<{ runAs: RunAs; launch: Launch } | { error: string; reason: string }> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const owner = pod.metadata?.uid ?? '';
    const refs = envReferences(this.spec);
    const configMaps = new Map<string, Record<string, string>>();
    const secrets = new Map<string, Record<string, string>>();
    try {
      for (const name of refs.configMaps) {
        const found = await this.ctx.objects.configMap(namespace, name, owner);
        if (found) configMaps.set(name, found.data ?? {});
      }
      for (const name of refs.secrets) {
        const found = await this.ctx.objects.secret(namespace, name, owner);
        if (found) secrets.set(name, Object.fromEntries(Object.entries(found.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
      }
    } catch (err) {
      return { error: `cannot read the container's ConfigMaps and Secrets: ${(err as Error).message}`, reason: 'CreateContainerConfigError' };
    }
    const links = serviceEnv(this.ctx.services(), namespace, pod.spec?.enableServiceLinks ?? true);
    const env = containerEnv(this.spec, { configMaps, secrets }, this.ctx.downward(), links);
    if ('error' in env) return { error: env.error, reason: 'CreateContainerConfigError' };
    const security = securityFor(pod, this.spec, image, this.ctx.privilege);
    if ('error' in security) return { error: security.error, reason: 'CreateContainerConfigError' };
    const hostname = this.ctx.etcFor(security.runAs).hostname;
    const launch = launchFor(this.spec, image, env.env, hostname, security.runAs.uid);
    if ('error' in launch) return { error: launch.error, reason: 'CreateContainerError' };
    this.runAs = security.runAs;
    this.launch = launch.launch;
    return { runAs: security.runAs, launch: launch.launch };
  }

  private async exited(exit: ContainerExit): Promise<void> {
    this.stopProbes();
    const startedAt = 'running' in this.view.state ? this.view.state.running.startedAt : apiTime(exit.finishedAtMs);
    const terminated: TerminatedState = {
      exitCode: exit.exitCode,
      ...(exit.signal ? { signal: exit.signal } : {}),
      reason: exit.exitCode === 0 ? 'Completed' : 'Error',
      startedAt,
      finishedAt: apiTime(exit.finishedAtMs),
      ...(this.view.containerID ? { containerID: this.view.containerID } : {}),
    };
    // nsenter reports an argv it could not exec with 126/127 and says why: the runtime's StartError.
    if (exit.exitCode === 126 || exit.exitCode === 127) {
      const tail = await this.logTail();
      const line = tail
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('nsenter: failed to execute'));
      if (line) Object.assign(terminated, { reason: 'StartError', exitCode: 128, message: line.replace(/^nsenter: /, '') });
    }
    this.view = { ...this.view, state: { terminated }, ready: false, started: false };
    const pod = this.ctx.pod();
    this.ctx.log.info('container exited', {
      pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`,
      container: this.spec.name,
      exitCode: terminated.exitCode,
      reason: terminated.reason,
    });
    this.ctx.changed();
  }

  private setWaiting(reason: string, message?: string): void {
    const lastState = 'terminated' in this.view.state ? { terminated: this.view.state.terminated } : this.view.lastState;
    this.view = {
      ...this.view,
      state: { waiting: { reason, ...(message ? { message } : {}) } },
      ready: false,
      started: false,
      ...(lastState ? { lastState } : {}),
    };
    this.ctx.changed();
  }

  /** The pod's grace, or the probe's own for a probe that kills (terminationGracePeriodSeconds). */
  private graceMs(probe?: V1Probe): number {
    const seconds = probe?.terminationGracePeriodSeconds ?? this.ctx.pod().spec?.terminationGracePeriodSeconds ?? 30;
    return seconds * 1000;
  }

  /**
   * Stops the container: preStop within the grace period, SIGTERM, and SIGKILL when the grace is over
   * (at least 2 s after preStop, as the kubelet allows). Resolves once the process has exited.
   */
  kill(graceMs: number, runPreStop = true): Promise<void> {
    this.killing ??= (async () => {
      const process = this.process;
      if (!process?.running) return;
      const deadline = Date.now() + graceMs;
      const preStop = runPreStop ? this.spec.lifecycle?.preStop : undefined;
      if (preStop && graceMs > 0) {
        const outcome = await Promise.race([
          runHook(preStop, this.spec, this.ctx.podIp, this.execInContainer(), graceMs),
          process.exited.then(() => undefined),
        ]);
        if (outcome && outcome.result !== 'success') {
          this.ctx.events.pod(this.ctx.pod(), 'Warning', 'FailedPreStopHook', `PreStopHook failed: ${outcome.output}`, this.spec.name);
        }
      }
      const remaining = graceMs > 0 ? Math.max(deadline - Date.now(), preStop ? 2_000 : 0) : 0;
      process.terminate(this.stopSignal());
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        process.exited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), remaining))),
      ]);
      clearTimeout(timer);
      if (late) {
        this.ctx.log.info('grace period over, killing', { container: this.spec.name, graceMs });
        process.kill();
      }
      await process.exited;
    })().finally(() => {
      this.killing = undefined;
    });
    return this.killing;
  }

  private stopSignal(): NodeJS.Signals {
    const signal = this.spec.lifecycle?.stopSignal;
    return signal && /^SIG[A-Z0-9]+$/.test(signal) ? (signal as NodeJS.Signals) : 'SIGTERM';
  }

  /** The current process's output, as the kubelet keeps it: one file per start. */
  private logFile(): string {
    return path.join(this.ctx.podDir, 'logs', this.spec.name, `${Math.max(0, this.attempt - 1)}.log`);
  }

  private async logTail(): Promise<string> {
    try {
      const file = await open(this.logFile(), 'r');
      try {
        const { size } = await file.stat();
        const buffer = Buffer.alloc(Math.min(size, 4096));
        await file.read(buffer, 0, buffer.length, Math.max(0, size - buffer.length));
        return buffer.toString('utf8');
      } finally {
        await file.close();
      }
    } catch {
      return '';
    }
  }

  /** How exec probes and hooks run a command in this container. */
  private execInContainer(): ExecInContainer {
    return (command) => {
      const runAs = this.runAs ?? { uid: 0, gid: 0, noNewPrivs: false };
      const { file, args } = enterArgs(
        {
          holderPid: this.ctx.holderPid,
          root: this.rootPath ?? '/',
          uid: runAs.uid,
          gid: runAs.gid,
          switchUser: this.ctx.privilege === 'root',
          noNewPrivs: runAs.noNewPrivs,
          cwd: this.launch?.cwd ?? '/',
        },
        command,
      );
      return { file, args, env: this.launch?.env ?? {} };
    };
  }

  // ----- probes

  private refreshReadiness(): void {
    const running = this.running;
    const started = containerStarted(running, this.probes.startup?.worker);
    const ready = this.init ? false : containerReady(running, started, this.probes.readiness?.worker);
    if (started !== this.view.started || ready !== this.view.ready) {
      this.view = { ...this.view, started, ready };
      this.ctx.changed();
    }
  }

  private startProbes(): void {
    if (this.init) return;
    for (const [type, spec] of [
      ['startup', this.spec.startupProbe],
      ['liveness', this.spec.livenessProbe],
      ['readiness', this.spec.readinessProbe],
    ] as const) {
      if (!spec) continue;
      let entry = this.probes[type];
      if (!entry) {
        entry = { worker: new ProbeWorker(type, probeTiming(spec)), spec, busy: false };
        this.probes[type] = entry;
      }
      clearInterval(entry.timer);
      const probe = entry;
      probe.timer = setInterval(() => void this.tick(type), probe.worker.timing.periodSeconds * 1000);
      // The first probe runs as soon as the container runs (the kubelet triggers readiness on start).
      void this.tick(type);
    }
  }

  /**
   * Probes readiness now if the container runs and is not ready yet, and restarts its period: what the
   * kubelet's prober manager does when a pod sync finds an unready container (UpdatePodStatus's manual
   * trigger), so readiness follows a pod's changes instead of waiting a whole period.
   */
  triggerReadiness(): void {
    const entry = this.probes.readiness;
    if (!entry?.timer || entry.busy || !this.running || entry.worker.result === 'success') return;
    clearInterval(entry.timer);
    entry.timer = setInterval(() => void this.tick('readiness'), entry.worker.timing.periodSeconds * 1000);
    void this.tick('readiness');
  }

  /** Stops probing (the container exited, or the pod is gone). */
  stopProbes(): void {
    for (const entry of Object.values(this.probes)) {
      clearInterval(entry.timer);
      entry.timer = undefined;
    }
  }

  private async tick(type: ProbeType): Promise<void> {
    const entry = this.probes[type];
    if (!entry || entry.busy) return;
    const { worker, spec } = entry;
    const before = worker.result;
    const state = this.view.state;
    const finished = 'terminated' in state;
    const step = worker.step(
      {
        containerId: this.view.containerID,
        running: this.running,
        terminated: finished,
        startedAtMs: this.process?.startedAtMs,
        started: this.view.started,
        willRestart: 'terminated' in state ? this.willRestart(state.terminated.exitCode) : true,
        podDeleting: this.ctx.stopping.aborted,
        podTerminal: false,
      },
      Date.now(),
    );
    if (step === 'stop') {
      clearInterval(entry.timer);
      entry.timer = undefined;
    }
    if (step === 'probe') {
      entry.busy = true;
      const containerId = this.view.containerID;
      try {
        const outcome = await runProbe(spec, this.spec, this.ctx.podIp, this.execInContainer());
        if (containerId !== this.view.containerID) return;
        const label = `${type[0]!.toUpperCase()}${type.slice(1)}`;
        if (outcome.result === 'failure')
          this.ctx.events.pod(this.ctx.pod(), 'Warning', 'Unhealthy', `${label} probe failed: ${outcome.output}`, this.spec.name);
        else if (outcome.result === 'error')
          this.ctx.events.pod(this.ctx.pod(), 'Warning', 'Unhealthy', `${label} probe errored: ${outcome.output}`, this.spec.name);
        else if (outcome.warning) this.ctx.events.pod(this.ctx.pod(), 'Warning', 'ProbeWarning', `${label} probe warning: ${outcome.output}`, this.spec.name);
        worker.record(outcome.result);
        const meta = this.ctx.pod().metadata;
        this.ctx.metrics.probes.inc({
          probe_type: type,
          result: outcome.result === 'success' ? 'successful' : outcome.result === 'failure' ? 'failed' : 'unknown',
          container: this.spec.name,
          pod: meta?.name ?? '',
          namespace: meta?.namespace ?? '',
        });
      } finally {
        entry.busy = false;
      }
    }
    if (worker.result === before) return;
    this.refreshReadiness();
    if (type === 'startup' && worker.result === 'success') void this.tick('readiness');
    if ((type === 'liveness' || type === 'startup') && worker.result === 'failure' && this.running && !this.ctx.stopping.aborted) {
      this.ctx.events.pod(this.ctx.pod(), 'Normal', 'Killing', `Container ${this.spec.name} failed ${type} probe, will be restarted`, this.spec.name);
      void this.kill(this.graceMs(spec));
    }
  }
}
