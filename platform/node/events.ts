// Events about pods, as the kubelet records them (Scheduled, Pulled, Created, Started, Killing, BackOff,
// Unhealthy, Failed, FailedMount, ...), written as events.k8s.io/v1 with reportingController
// promsnap.dev/node. A repeat of the same event on the same object within ten minutes raises its series
// count instead of writing a new one, as the events library's deduplication does. Writing an event never
// blocks or fails the pod's work.
import { randomBytes } from 'node:crypto';
import { V1MicroTime, type EventsV1Event, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { mergePatch, messageOf, type Kube } from './kube.js';

/** The kubelet part's events; the scheduler part reports as promsnap.dev/scheduler. */
export const reportingController = 'promsnap.dev/node';

export type EventType = 'Normal' | 'Warning';

interface Recent {
  name: string;
  namespace: string;
  count: number;
  lastMs: number;
}

const seriesWindowMs = 10 * 60_000;

export class EventRecorder {
  private readonly recent = new Map<string, Recent>();

  constructor(
    private readonly kube: Kube,
    private readonly nodeName: string,
    private readonly log: Logger,
    private readonly controller: string = reportingController,
  ) {}

  /** An event about a pod, or one of its containers when `container` is given. */
  pod(pod: V1Pod, type: EventType, reason: string, note: string, container?: string): void {
    const meta = pod.metadata ?? {};
    const containers = [
      ...(pod.spec?.initContainers ?? []).map((c) => ['initContainers', c.name]),
      ...(pod.spec?.containers ?? []).map((c) => ['containers', c.name]),
    ];
    const list = container ? containers.find(([, name]) => name === container)?.[0] : undefined;
    const regarding = {
      apiVersion: 'v1',
      kind: 'Pod',
      name: meta.name ?? '',
      namespace: meta.namespace ?? 'default',
      uid: meta.uid ?? '',
      ...(container && list ? { fieldPath: `spec.${list}{${container}}` } : {}),
    };
    void this.write(regarding, type, reason, note);
  }

  private async write(
    regarding: { apiVersion: string; kind: string; name: string; namespace: string; uid: string; fieldPath?: string },
    type: EventType,
    reason: string,
    note: string,
  ): Promise<void> {
    const key = `${regarding.uid}/${regarding.fieldPath ?? ''}/${type}/${reason}/${note}`;
    const now = Date.now();
    this.prune(now);
    const seen = this.recent.get(key);
    try {
      if (seen && now - seen.lastMs < seriesWindowMs) {
        seen.count++;
        seen.lastMs = now;
        await this.kube.events.patchNamespacedEvent(
          { name: seen.name, namespace: seen.namespace, body: { series: { count: seen.count, lastObservedTime: new V1MicroTime(now) } } },
          mergePatch,
        );
        return;
      }
      const name = `${regarding.name}.${randomBytes(8).toString('hex')}`;
      const event: EventsV1Event = {
        metadata: { name, namespace: regarding.namespace },
        eventTime: new V1MicroTime(now),
        reportingController: this.controller,
        reportingInstance: `${this.controller}-${this.nodeName}`,
        action: reason,
        reason,
        note: note.slice(0, 1024),
        type,
        regarding,
      };
      this.recent.set(key, { name, namespace: regarding.namespace, count: 1, lastMs: now });
      await this.kube.events.createNamespacedEvent({ namespace: regarding.namespace, body: event });
    } catch (err) {
      // A namespace being deleted refuses new events; nothing about the pod depends on its events.
      this.log.debug('event not recorded', { reason, object: `${regarding.namespace}/${regarding.name}`, err: messageOf(err) });
    }
  }

  private prune(now: number): void {
    if (this.recent.size < 512) return;
    for (const [key, entry] of this.recent) if (now - entry.lastMs >= seriesWindowMs) this.recent.delete(key);
  }
}
