// The ConfigMaps and Secrets the node's pods use, each watched on its own (a list and watch by name, which
// is what the Node authorizer lets a node read: only objects its pods name), kept while some pod uses it.
// A change is announced so the pods using it rewrite their volumes (Prometheus sees its new config).
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { Informer } from './informer.js';
import { messageOf, type Kube } from './kube.js';

export type ObjectKind = 'ConfigMap' | 'Secret';

interface Entry {
  informer: Informer<V1ConfigMap> | Informer<V1Secret>;
  ready: Promise<void>;
  owners: Set<string>;
}

export class ObjectCache {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(kind: ObjectKind, namespace: string, name: string) => void>();

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
  ) {}

  onChange(listener: (kind: ObjectKind, namespace: string, name: string) => void): void {
    this.listeners.add(listener);
  }

  async configMap(namespace: string, name: string, owner: string): Promise<V1ConfigMap | undefined> {
    const entry = this.watch('ConfigMap', namespace, name, owner);
    await entry.ready;
    return (entry.informer as Informer<V1ConfigMap>).get(namespace, name);
  }

  async secret(namespace: string, name: string, owner: string): Promise<V1Secret | undefined> {
    const entry = this.watch('Secret', namespace, name, owner);
    await entry.ready;
    return (entry.informer as Informer<V1Secret>).get(namespace, name);
  }

  /** Drops an owner (a pod that is gone); an object nobody uses is no longer watched. */
  release(owner: string): void {
    for (const [key, entry] of this.entries) {
      entry.owners.delete(owner);
      if (entry.owners.size === 0) {
        entry.informer.stop();
        this.entries.delete(key);
      }
    }
  }

  stop(): void {
    for (const entry of this.entries.values()) entry.informer.stop();
    this.entries.clear();
  }

  private watch(kind: ObjectKind, namespace: string, name: string, owner: string): Entry {
    const key = `${kind}/${namespace}/${name}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const fieldSelector = `metadata.name=${name}`;
      const announce = () => {
        for (const listener of this.listeners) listener(kind, namespace, name);
      };
      const common = {
        kubeConfig: this.kube.kubeConfig,
        fieldSelector,
        onUpsert: announce,
        onDelete: announce,
        onError: (err: unknown) => this.log.warn('watch failed, retrying', { object: key, err: messageOf(err) }),
      };
      const informer =
        kind === 'ConfigMap'
          ? new Informer<V1ConfigMap>({
              ...common,
              path: `/api/v1/namespaces/${namespace}/configmaps`,
              type: 'V1ConfigMap',
              list: () => this.kube.core.listNamespacedConfigMap({ namespace, fieldSelector }),
            })
          : new Informer<V1Secret>({
              ...common,
              path: `/api/v1/namespaces/${namespace}/secrets`,
              type: 'V1Secret',
              list: () => this.kube.core.listNamespacedSecret({ namespace, fieldSelector }),
            });
      entry = { informer, ready: informer.start(), owners: new Set() };
      // A failed first list is retried by the next caller.
      entry.ready.catch(() => this.entries.delete(key));
      this.entries.set(key, entry);
    }
    entry.owners.add(owner);
    return entry;
  }
}
