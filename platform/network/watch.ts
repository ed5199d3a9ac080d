// A list-and-watch cache of one resource, on client-node's ListWatch, that keeps itself alive: client-node
// gives up on a watch after any error other than 410 Gone or its own timeout (an API server restart, a
// refused connection, a 403 while RBAC is being applied), so this restarts it with a capped back-off
// for as long as the cache is open. The components read the cache; they never list on a request path.
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';

export interface WatchedObjects<T extends KubernetesObject> {
  list(): readonly T[];
  get(namespace: string, name: string): T | undefined;
  /** Resolves once the first list has been read, so the cache holds what the API server held. */
  readonly synced: Promise<void>;
  /** The last error seen while listing or watching, for a start-up timeout message. */
  lastError(): string | undefined;
  stop(): Promise<void>;
}

export interface WatchOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The watch path, e.g. /api/v1/services (all namespaces). */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  /** Called after every add, update and delete (also for each object of a relist). */
  onChange: () => void;
  log: Logger;
  /** What is watched, for logs: "services". */
  what: string;
  /** The longest wait between retries after failures; default 30 s. */
  maxRetryMs?: number;
}

const firstRetryMs = 500;
const maxRetryMs = 30_000;

export function watchObjects<T extends KubernetesObject>(options: WatchOptions<T>): WatchedObjects<T> {
  let stopped = false;
  let listedOnce = false;
  let retryMs = firstRetryMs;
  let retryTimer: NodeJS.Timeout | undefined;
  let lastError: string | undefined;
  let markSynced!: () => void;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));

  const informer = new ListWatch<T>(
    options.path,
    new Watch(options.kubeConfig),
    async () => {
      const list = await options.list();
      listedOnce = true;
      return list;
    },
    false,
  );
  informer.on('change', () => options.onChange());
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    const error = describe(err);
    // The same failure again (an API not served yet, a role not bound yet) is worth one warning, not one a retry.
    const fields = { what: options.what, error, retryInMs: retryMs };
    if (error === lastError) options.log.debug('watch failed; retrying', fields);
    else options.log.warn('watch failed; retrying', fields);
    lastError = error;
    retryTimer = setTimeout(() => void start(), retryMs);
    retryMs = Math.min(retryMs * 2, options.maxRetryMs ?? maxRetryMs);
  });

  const start = async (): Promise<void> => {
    retryTimer = undefined;
    if (stopped) return;
    try {
      await informer.start();
    } catch (err) {
      // ListWatch reports list and watch failures through 'error'; only a broken kubeconfig throws.
      lastError = describe(err);
      options.log.error('cannot watch', { what: options.what, error: lastError });
      return;
    }
    if (listedOnce && !stopped) {
      retryMs = firstRetryMs;
      markSynced();
      // A relist after a failure replaces the cache; tell the consumer even when nothing changed.
      options.onChange();
    }
  };
  void start();

  return {
    list: () => informer.list(),
    get: (namespace, name) => informer.get(name, namespace),
    synced,
    lastError: () => lastError,
    async stop() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      await informer.stop();
    },
  };
}

/** Waits for every cache's first list; rejects after timeoutMs naming what is missing and why. */
export async function waitSynced(caches: Array<{ what: string; cache: WatchedObjects<KubernetesObject> }>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Set(caches);
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const missing = [...pending].map(({ what, cache }) => `${what}${cache.lastError() ? ` (${cache.lastError()})` : ''}`);
      reject(new Error(`could not list ${missing.join(', ')} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([Promise.all(caches.map(async (entry) => entry.cache.synced.then(() => pending.delete(entry)))), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const status = (err as { statusCode?: unknown; code?: unknown }).statusCode ?? (err as { code?: unknown }).code;
    return typeof status === 'number' ? `${status} ${err.message}` : err.message;
  }
  if (typeof err === 'object' && err !== null && 'message' in err) return String(err.message);
  return String(err);
}
