// The node's pod loop: it is its own scheduler (a pending pod for the default scheduler is bound to the node,
// oldest first, with the Scheduled event a scheduler writes), and runs a worker per pod bound to it. A pod
// update reaches its worker; a deletion timestamp starts the stop; a pod gone from the API server is stopped
// at once. Pods that have finished before the node saw them are left as they are.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import type { EventRecorder } from './events.js';
import { Informer } from './informer.js';
import { messageOf, statusOf, type Kube } from './kube.js';
import type { ContainerSample } from './metrics.js';
import type { ObjectCache } from './objects.js';
import { PodWorker, type NodeRuntime } from './pod-worker.js';

export interface PodSyncOptions {
  runtime: NodeRuntime;
  /** The kubelet part's connection (system:node:<name>): its own pods, Services. */
  kube: Kube;
  /** The scheduler part's connection (the controllers' account): pending pods and their binding. */
  scheduler: Kube;
  log: Logger;
  /** Events of the scheduler part (Scheduled). */
  schedulerEvents: EventRecorder;
  objects: ObjectCache;
  nodeName: string;
}

function terminal(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export class PodSync {
  private readonly workers = new Map<string, PodWorker>();
  private readonly finished = new Set<string>();
  private readonly binding = new Set<string>();
  private readonly services: Informer<V1Service>;
  private readonly bound: Informer<V1Pod>;
  private readonly pending: Informer<V1Pod>;
  private stopped = false;

  constructor(private readonly options: PodSyncOptions) {
    const { kube, scheduler, log, nodeName } = options;
    const onError = (what: string) => (err: unknown) => log.warn(`${what} watch failed, retrying`, { err: messageOf(err) });
    this.services = new Informer<V1Service>({
      kubeConfig: kube.kubeConfig,
      path: '/api/v1/services',
      type: 'V1Service',
      list: () => kube.core.listServiceForAllNamespaces(),
      onUpsert: () => undefined,
      onDelete: () => undefined,
      onError: onError('services'),
    });
    this.bound = new Informer<V1Pod>({
      kubeConfig: kube.kubeConfig,
      path: '/api/v1/pods',
      type: 'V1Pod',
      fieldSelector: `spec.nodeName=${nodeName}`,
      list: () => kube.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` }),
      onUpsert: (pod) => this.upsert(pod),
      onDelete: (pod) => this.removed(pod),
      onError: onError('pods'),
    });
    this.pending = new Informer<V1Pod>({
      kubeConfig: scheduler.kubeConfig,
      path: '/api/v1/pods',
      type: 'V1Pod',
      fieldSelector: 'spec.nodeName=',
      list: () => scheduler.core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=' }),
      onUpsert: () => this.schedule(),
      onDelete: () => undefined,
      onError: onError('pending pods'),
    });
    options.objects.onChange((kind, namespace, name) => {
      for (const worker of this.workers.values()) if (worker.namespace === namespace) worker.objectChanged(kind, name);
    });
  }

  /** Services, for the Service link variables of containers. */
  serviceList(): readonly V1Service[] {
    return this.services.list();
  }

  async start(): Promise<void> {
    await this.services.start();
    await this.bound.start();
    await this.pending.start();
    this.schedule();
  }

  /** Every pod stopped (grace capped), the informers closed. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    this.pending.stop();
    this.bound.stop();
    this.services.stop();
    await Promise.all([...this.workers.values()].map((worker) => worker.shutDown(graceMs)));
    this.workers.clear();
  }

  get podCount(): number {
    return this.workers.size;
  }

  /** Running pods and containers (kubelet_running_pods, kubelet_running_containers). */
  running(): { pods: number; containers: number } {
    const workers = [...this.workers.values()];
    return { pods: workers.filter((w) => w.hasSandbox).length, containers: workers.reduce((n, w) => n + w.samples().length, 0) };
  }

  /** Running containers, for /metrics/cadvisor. */
  containerSamples(): ContainerSample[] {
    return [...this.workers.values()].flatMap((w) => w.samples());
  }

  /** The pods the node runs, for /pods. */
  pods(): V1Pod[] {
    return [...this.workers.values()].map((w) => w.latest);
  }

  private upsert(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid ?? '';
    const worker = this.workers.get(uid);
    if (worker) {
      worker.update(pod);
      return;
    }
    if (this.finished.has(uid)) {
      // Finished here earlier, then deleted: terminal pods go at once, but say so if one lingers.
      return;
    }
    if (terminal(pod)) {
      this.finished.add(uid);
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      // Bound to us but never started (or started by a node process that is gone): nothing to stop.
      void this.options.kube.core
        .deleteNamespacedPod({
          name: pod.metadata.name ?? '',
          namespace: pod.metadata.namespace ?? 'default',
          body: { gracePeriodSeconds: 0, preconditions: { uid } },
        })
        .catch(() => undefined);
      return;
    }
    const created = new PodWorker(this.options.runtime, pod);
    this.workers.set(uid, created);
    void created.done.then(() => {
      this.workers.delete(uid);
      this.finished.add(uid);
    });
    created.start();
  }

  private removed(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? '';
    this.finished.delete(uid);
    this.workers.get(uid)?.gone();
  }

  /** Binds pending pods meant for the default scheduler, oldest first. */
  private schedule(): void {
    if (this.stopped) return;
    const pods = this.pending
      .list()
      .filter((pod) => !pod.spec?.nodeName && !pod.metadata?.deletionTimestamp && !terminal(pod))
      .filter((pod) => (pod.spec?.schedulerName ?? 'default-scheduler') === 'default-scheduler')
      .sort((a, b) => (a.metadata?.creationTimestamp?.getTime() ?? 0) - (b.metadata?.creationTimestamp?.getTime() ?? 0));
    for (const pod of pods) void this.bind(pod);
  }

  private async bind(pod: V1Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? '';
    if (this.binding.has(uid)) return;
    this.binding.add(uid);
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    try {
      await this.options.scheduler.core.createNamespacedPodBinding({
        name,
        namespace,
        body: { metadata: { name, namespace, uid }, target: { apiVersion: 'v1', kind: 'Node', name: this.options.nodeName } },
      });
      this.options.schedulerEvents.pod(pod, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${this.options.nodeName}`);
    } catch (err) {
      // 409: bound meanwhile (by us through another event, or by someone else); 404: deleted.
      if (statusOf(err) !== 409 && statusOf(err) !== 404) {
        this.options.log.warn('binding failed', { pod: `${namespace}/${name}`, err: messageOf(err) });
        this.binding.delete(uid);
        setTimeout(() => this.schedule(), 1_000).unref();
        return;
      }
    }
    // The pending informer drops the pod once bound; forget it a little later so a stale event cannot re-bind it.
    setTimeout(() => this.binding.delete(uid), 60_000).unref();
  }
}
