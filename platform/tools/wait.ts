// Polling until something holds: the one loop every start-up check, readiness wait and test wait uses.
// An AbortSignal ends it early, so a wait on a process that has died stops at once instead of keeping
// the caller (and its timers) alive until the deadline.

export interface WaitOptions {
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Stops the polling early (for example when the process being waited for has exited). */
  signal?: AbortSignal;
}

/** Thrown when the signal ends a wait; its message is the signal's reason when that is an Error. */
export class WaitAbortedError extends Error {
  constructor(what: string, reason: unknown) {
    super(reason instanceof Error ? reason.message : `stopped waiting for ${what}`);
    this.name = 'WaitAbortedError';
  }
}

/** Polls until check() returns a value other than undefined/false; fails with what it waited for. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (options.signal?.aborted) throw new WaitAbortedError(options.what, options.signal.reason);
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}${detail}`);
    }
    await sleep(options.intervalMs ?? 100, options.signal);
  }
}

/** Resolves after ms, or as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** True when GET url answers 2xx. */
export async function httpOk(url: string, headers?: Record<string, string>): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000), ...(headers ? { headers } : {}) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
