// The kubelet's restart back-off (client-go flowcontrol.Backoff as kubelet.go configures it for crash loops
// and image pulls): the first restart is immediate, then the wait doubles from 10 s up to 300 s, counted
// from when the container last finished. A container that ran for 10 minutes since its last restart
// starts over at 10 s. No jitter: the kubelet builds it without.

export interface BackOffPolicy {
  initialMs: number;
  maxMs: number;
  /** An entry older than this (finish time minus last restart) is forgotten: the next restart is immediate again. */
  forgetAfterMs: number;
}

/** v1.37's defaults (the reduced-decay and configurable-max gates are off). */
export const crashLoopBackOff: BackOffPolicy = { initialMs: 10_000, maxMs: 300_000, forgetAfterMs: 600_000 };
/** Image pulls use the same numbers (imageBackOffPeriod, MaxImageBackOff) with the default expiry, twice the max. */
export const imagePullBackOff: BackOffPolicy = { initialMs: 10_000, maxMs: 300_000, forgetAfterMs: 600_000 };

export type BackOffDecision = { start: true } | { start: false; retryInMs: number; backOffMs: number };

interface Entry {
  backOffMs: number;
  lastUpdate: number;
}

/** Per-key back-off; `now` is passed in so the sequence can be checked without waiting. */
export class BackOff {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly policy: BackOffPolicy = crashLoopBackOff) {}

  /**
   * Whether the container that last finished at `finishedAt` may start now (kuberuntime's doBackOff). When it
   * may, the start is recorded and the next wait doubles; when not, how long until it may.
   */
  attempt(key: string, finishedAt: number, now: number): BackOffDecision {
    const entry = this.entries.get(key);
    if (entry && !this.expired(finishedAt, entry) && now - finishedAt < entry.backOffMs) {
      return { start: false, retryInMs: finishedAt + entry.backOffMs - now, backOffMs: entry.backOffMs };
    }
    this.next(key, finishedAt, now);
    return { start: true };
  }

  /**
   * For image pulls (the kubelet checks before pulling, IsInBackOffSinceUpdate): how long until the next
   * pull may be tried, counted from the last recorded failure; 0 when it may now.
   */
  remaining(key: string, now: number): number {
    const entry = this.entries.get(key);
    if (!entry || now - entry.lastUpdate > this.policy.forgetAfterMs) return 0;
    return Math.max(0, entry.lastUpdate + entry.backOffMs - now);
  }

  /** Records a failure now (a failed pull): the next wait is 10 s, then doubles. */
  failed(key: string, now: number): void {
    this.next(key, now, now);
  }

  /** The current wait for a key (0 before its first restart): what "back-off 20s restarting ..." names. */
  current(key: string): number {
    return this.entries.get(key)?.backOffMs ?? 0;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every key that starts with prefix (a pod's containers when the pod is gone). */
  forgetPrefix(prefix: string): void {
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  private next(key: string, eventTime: number, now: number): void {
    const entry = this.entries.get(key);
    if (!entry || this.expired(eventTime, entry)) {
      this.entries.set(key, { backOffMs: this.policy.initialMs, lastUpdate: now });
      return;
    }
    entry.backOffMs = Math.min(entry.backOffMs * 2, this.policy.maxMs);
    entry.lastUpdate = now;
  }

  private expired(eventTime: number, entry: Entry): boolean {
    return eventTime - entry.lastUpdate > this.policy.forgetAfterMs;
  }
}

/** Go's time.Duration formatting for whole seconds and minutes, as the kubelet's messages print them (10s, 1m20s, 5m0s). */
export function goDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${seconds % 60}s`;
}
