// The Trigger's delivery policy (spec.delivery) as Knative Eventing applies it, so the local ping
// emitter retries, backs off and dead-letters exactly as a cluster would. Pure: no I/O here; the
// emitter (ping.ts) supplies the send and sleep functions.
//
// Source of truth: knative.dev/eventing v0.50.0 pkg/kncloudevents (retries.go, event_dispatcher.go)
// and hashicorp/go-retryablehttp, which it drives:
// - attempts = 1 + spec.retry; the wait after failed attempt i (0-based) is
//   exponential: backoffDelay * 2^i, linear: backoffDelay * i (so the first linear retry is immediate);
// - a response is retried when there is none (connection error, timeout) or its status is
//   5xx, 404, 408, 409 or 429; every other status ends the delivery at once;
// - any non-2xx outcome left at the end goes to the deadLetterSink (with the same retry policy),
//   carrying knativeerrordest / knativeerrorcode / knativeerrordata extensions.
// The Trigger's spec.delivery is read by manifests.ts (deliveryPolicy), which also holds Knative's
// backoff (retryDelayMs); this module adds what the dispatcher does with them.
import { retryDelayMs, type DeliveryPolicy as DeliverySettings, type Destination } from '../manifests.js';

/** A Trigger's delivery settings with the dead-letter sink resolved to the URL the emitter sends to. */
export type DeliveryPolicy = Omit<DeliverySettings, 'deadLetterSink'> & {
  /** Resolved dead-letter sink URL, when the Trigger has one. */
  deadLetterSink?: string;
};

/** The parts of a policy that decide retries and waits. */
export type RetryPolicy = Pick<DeliverySettings, 'retry' | 'backoffPolicy' | 'backoffDelayMs' | 'retryAfterMaxMs'>;

/** What one HTTP attempt produced: a status (with headers and body) or no response at all. */
export type AttemptOutcome =
  | { status: number; headers?: Record<string, string | string[] | undefined>; body?: string }
  | { error: Error };

/** Knative's extension keys and the 1024-character cap on knativeerrordata (pkg/kncloudevents/attributes). */
export const knativeErrorDataMaxLength = 1024;
/** The broker ingress stamps this TTL on every event; the dead-letter copy still carries it. */
export const knativeBrokerDefaultTtl = 255;

/** The settings manifests.ts read, with `resolveSink` turning the dead-letter Destination into a URL. */
export function withDeadLetterUrl(settings: DeliverySettings, resolveSink: (destination: Destination) => string): DeliveryPolicy {
  const { deadLetterSink, ...rest } = settings;
  return deadLetterSink === undefined ? rest : { ...rest, deadLetterSink: resolveSink(deadLetterSink) };
}

/** Knative's SelectiveRetry: whether an attempt's outcome is worth another try. */
export function isRetryable(outcome: AttemptOutcome): boolean {
  if ('error' in outcome) return true;
  const { status } = outcome;
  return status >= 500 || status === 404 || status === 408 || status === 409 || status === 429 || status === -1;
}

export function isSuccess(outcome: AttemptOutcome): boolean {
  return 'status' in outcome && outcome.status >= 200 && outcome.status < 300;
}

/** Seconds or HTTP-date in a Retry-After header, as milliseconds from now (0 when absent or unreadable). */
export function retryAfterMs(value: string | undefined, now: number): number {
  if (!value) return 0;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1_000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? 0 : Math.max(0, date - now);
}

/** The wait before the retry that follows failed attempt `attempt` (0-based). */
export function backoffMs(policy: RetryPolicy, attempt: number, outcome?: AttemptOutcome, now = Date.now()): number {
  let wait = retryDelayMs(policy, attempt);
  if (policy.retryAfterMaxMs !== undefined && outcome && 'status' in outcome && (outcome.status === 429 || outcome.status === 503)) {
    const header = outcome.headers?.['retry-after'];
    const asked = Math.min(retryAfterMs(Array.isArray(header) ? header[0] : header, now), policy.retryAfterMaxMs);
    wait = Math.max(wait, asked);
  }
  return wait;
}

/** What to do after attempt `attempt` (0-based) ended with `outcome`. */
export type Step = { kind: 'delivered' } | { kind: 'retry'; waitMs: number } | { kind: 'failed' };

export function nextStep(policy: RetryPolicy, attempt: number, outcome: AttemptOutcome, now = Date.now()): Step {
  if (isSuccess(outcome)) return { kind: 'delivered' };
  if (!isRetryable(outcome) || attempt >= policy.retry) return { kind: 'failed' };
  return { kind: 'retry', waitMs: backoffMs(policy, attempt, outcome, now) };
}

/**
 * The extensions Knative adds to the copy of the event it sends to the dead-letter sink:
 * the destination that failed, the last status (500 when no response came back) and the last
 * response body, base64-encoded and cut to 1024 characters.
 */
export function deadLetterExtensions(destination: string, outcome: AttemptOutcome): Record<string, string | number> {
  const code = 'status' in outcome ? outcome.status : 500;
  const body = 'status' in outcome ? (outcome.body ?? '') : `dispatch error: ${outcome.error.message}`;
  return {
    knativeerrordest: destination,
    knativeerrorcode: code,
    knativeerrordata: Buffer.from(body, 'utf8').toString('base64').slice(0, knativeErrorDataMaxLength),
  };
}

export interface DeliveryResult {
  /** Every attempt's outcome, in order. */
  attempts: AttemptOutcome[];
  /** The waits taken between attempts, in milliseconds. */
  waits: number[];
  delivered: boolean;
  /** The successful outcome when delivered, else the last failure. */
  last: AttemptOutcome;
}

/**
 * Sends with the policy's retries and backoff. `send` makes one attempt (it never throws; failures
 * are outcomes); `sleep` waits and may end early when the runner stops (then delivery gives up).
 */
export async function deliverWithRetries(
  policy: RetryPolicy,
  send: () => Promise<AttemptOutcome>,
  sleep: (waitMs: number) => Promise<boolean>,
): Promise<DeliveryResult> {
  const attempts: AttemptOutcome[] = [];
  const waits: number[] = [];
  for (let attempt = 0; ; attempt++) {
    const outcome = await send();
    attempts.push(outcome);
    const step = nextStep(policy, attempt, outcome);
    if (step.kind === 'delivered') return { attempts, waits, delivered: true, last: outcome };
    if (step.kind === 'failed') return { attempts, waits, delivered: false, last: outcome };
    waits.push(step.waitMs);
    if (!(await sleep(step.waitMs))) return { attempts, waits, delivered: false, last: outcome };
  }
}
