// List then watch, with every object in client-node's typed shape (a watch event is deserialised as the
// list's items are: client-node's own ListWatch hands out Dates from the list and strings from the watch),
// restarted after any error with a growing pause, and re-listed when the API server says the
// resourceVersion is gone (410).
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
// Not re-exported by the package's index; the package has no exports map, so the module is reachable.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** API path of the collection, e.g. /api/v1/pods or /api/v1/namespaces/ns/configmaps. */
  path: string;
  /** client-node's model name, e.g. V1Pod. */
  type: string;
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  fieldSelector?: string;
  labelSelector?: string;
  onUpsert: (object: T) => void;
  onDelete: (object: T) => void;
  onError?: (err: unknown) => void;
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

/** Server-side watch timeout: below client-node's 30 s inactivity timer, so a quiet watch ends cleanly. */
const watchTimeoutSeconds = 25;

export class Informer<T extends KubernetesObject> {
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  private controller: AbortController | undefined;
  private stopped = false;
  private pauseMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private synced: Promise<void> | undefined;

  constructor(private readonly options: InformerOptions<T>) {}

  /** Resolves once the first list has been delivered. */
  start(): Promise<void> {
    this.synced ??= new Promise<void>((resolve, reject) => {
      void this.run(resolve, reject);
    });
    return this.synced;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  private async run(onSynced?: () => void, onFirstError?: (err: unknown) => void): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.resourceVersion) {
        const list = await this.options.list();
        const seen = new Set<string>();
        for (const item of list.items) {
          seen.add(keyOf(item));
          this.objects.set(keyOf(item), item);
          this.options.onUpsert(item);
        }
        for (const [key, object] of this.objects) {
          if (seen.has(key)) continue;
          this.objects.delete(key);
          this.options.onDelete(object);
        }
        this.resourceVersion = list.metadata?.resourceVersion ?? '';
        onSynced?.();
      }
      const watch = new Watch(this.options.kubeConfig);
      this.controller = await watch.watch(
        this.options.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: watchTimeoutSeconds,
          ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
          ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
        },
        (phase, raw: unknown) => this.event(phase, raw),
        (err: unknown) => this.ended(err),
      );
    } catch (err) {
      if (onFirstError && !this.resourceVersion) {
        // The first list failed: the caller decides (a node without its pod list cannot start).
        onFirstError(err);
        return;
      }
      this.ended(err);
    }
  }

  private event(phase: string, raw: unknown): void {
    const meta = (raw as { metadata?: { resourceVersion?: string } } | null)?.metadata;
    if (phase === 'ERROR') {
      if ((raw as { code?: number } | null)?.code === 410) this.resourceVersion = '';
      return;
    }
    if (meta?.resourceVersion) this.resourceVersion = meta.resourceVersion;
    if (phase === 'BOOKMARK') return;
    const object = ObjectSerializer.deserialize(raw, this.options.type) as T;
    this.pauseMs = 0;
    if (phase === 'DELETED') {
      this.objects.delete(keyOf(object));
      this.options.onDelete(object);
    } else {
      this.objects.set(keyOf(object), object);
      this.options.onUpsert(object);
    }
  }

  private ended(err: unknown): void {
    if (this.stopped) return;
    const status = (err as { statusCode?: number; code?: number } | null)?.statusCode ?? (err as { code?: number } | null)?.code;
    if (status === 410) this.resourceVersion = '';
    const timeout = (err as { name?: string } | null)?.name === 'TimeoutError';
    if (err && !timeout && status !== 410) {
      this.options.onError?.(err);
      this.pauseMs = Math.min(this.pauseMs ? this.pauseMs * 2 : 500, 10_000);
    } else this.pauseMs = 0;
    this.timer = setTimeout(() => void this.run(), this.pauseMs);
  }
}
