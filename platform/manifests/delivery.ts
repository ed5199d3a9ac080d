// Knative's delivery arithmetic, in one place: a Trigger's (or Broker's) spec.delivery read as
// Knative Eventing reads it, the backoff between attempts, which outcomes are retried, and the ISO-8601
// durations it is written in.
//
// Source of truth: knative.dev/eventing v0.50.0 pkg/kncloudevents (retries.go, event_dispatcher.go)
// and hashicorp/go-retryablehttp, which it drives:
// - attempts = 1 + spec.retry; the wait after failed attempt i (0-based) is
//   exponential: backoffDelay * 2^i, linear: backoffDelay * i (so the first linear retry is immediate);
// - a response is retried when there is none (connection error, timeout) or its status is
//   5xx, 404, 408, 409 or 429; every other status ends the delivery at once;
// - any non-2xx outcome left at the end goes to the deadLetterSink (with the same retry policy),
//   carrying knativeerrordest / knativeerrorcode / knativeerrordata extensions.
import { field } from './objects.js';
import { destination, type Destination } from './destination.js';

/** spec.delivery as written (Knative's duck v1 DeliverySpec): what deliveryPolicy reads and checks. */
export interface DeliverySpec {
  retry?: number;
  backoffPolicy?: 'exponential' | 'linear';
  backoffDelay?: string;
  timeout?: string;
  retryAfterMax?: string;
  deadLetterSink?: Destination;
}

/** A delivery spec as Knative applies it: durations as written (ISO-8601) and in milliseconds. */
export interface DeliveryPolicy {
  /** Retries after the first attempt (Knative: spec.delivery.retry, none when unset). */
  retry: number;
  backoffPolicy?: 'exponential' | 'linear';
  backoffDelay?: string;
  backoffDelayMs?: number;
  /** Per-attempt timeout; none when unset. */
  timeout?: string;
  timeoutMs?: number;
  /** Set only when spec.delivery.retryAfterMax is: Knative honours Retry-After only then. */
  retryAfterMax?: string;
  retryAfterMaxMs?: number;
  deadLetterSink?: Destination;
}

/**
 * The one reader of a delivery spec (a Trigger's, else its Broker's): every field Knative's dispatcher
 * uses, checked, so a value of the wrong type or form fails here naming the field rather than being
 * ignored. Durations are read by isoDurationMs, as Knative reads them.
 */
export function deliveryPolicy(spec: unknown, where = 'delivery'): DeliveryPolicy {
  if (spec === undefined || spec === null) return { retry: 0 };
  const retry = field(spec, 'retry');
  if (retry !== undefined && (typeof retry !== 'number' || !Number.isInteger(retry) || retry < 0)) {
    throw new Error(`${where}.retry must be a whole number of at least 0, got ${JSON.stringify(retry)}`);
  }
  const policy = field(spec, 'backoffPolicy');
  if (policy !== undefined && policy !== 'exponential' && policy !== 'linear') {
    throw new Error(`${where}.backoffPolicy must be exponential or linear, got ${JSON.stringify(policy)}`);
  }
  const duration = (name: 'backoffDelay' | 'timeout' | 'retryAfterMax'): { text: string; ms: number } | undefined => {
    const value = field(spec, name);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new Error(`${where}.${name} must be an ISO-8601 duration such as PT1S, got ${JSON.stringify(value)}`);
    try {
      return { text: value, ms: isoDurationMs(value) };
    } catch (err) {
      throw new Error(`${where}.${name}: ${(err as Error).message}`, { cause: err });
    }
  };
  const delay = duration('backoffDelay');
  const timeout = duration('timeout');
  const retryAfterMax = duration('retryAfterMax');
  const dls = field(spec, 'deadLetterSink');
  return {
    retry: retry ?? 0,
    ...(policy !== undefined ? { backoffPolicy: policy } : {}),
    ...(delay ? { backoffDelay: delay.text, backoffDelayMs: delay.ms } : {}),
    ...(timeout ? { timeout: timeout.text, timeoutMs: timeout.ms } : {}),
    ...(retryAfterMax ? { retryAfterMax: retryAfterMax.text, retryAfterMaxMs: retryAfterMax.ms } : {}),
    ...(dls !== undefined ? { deadLetterSink: destination(dls, `${where}.deadLetterSink`) } : {}),
  };
}

/**
 * The wait before the retry that follows failed attempt `attempt` (counted from 0), as Knative's
 * dispatcher computes it (knative.dev/eventing pkg/kncloudevents/retries.go): exponential
 * backoffDelay * 2^attempt, linear backoffDelay * attempt (so the first linear retry is immediate).
 * Without both a policy and a delay, Knative retries at once.
 */
export function retryDelayMs(policy: Pick<DeliveryPolicy, 'backoffPolicy' | 'backoffDelayMs'>, attempt: number): number {
  const { backoffPolicy, backoffDelayMs } = policy;
  if (backoffPolicy === undefined || backoffDelayMs === undefined) return 0;
  return backoffPolicy === 'exponential' ? backoffDelayMs * 2 ** attempt : backoffDelayMs * attempt;
}

/** The waits between a delivery's 1 + retry attempts. */
export function retryDelaysMs(policy: Pick<DeliveryPolicy, 'retry' | 'backoffPolicy' | 'backoffDelayMs'>): number[] {
  return Array.from({ length: policy.retry }, (_, i) => retryDelayMs(policy, i));
}

const msPer = {
  // github.com/rickb777/date period: a year is 365.2425 days, a month a twelfth of that (30.436875).
  year: 31_556_952_000,
  month: 2_629_746_000,
  week: 604_800_000,
  day: 86_400_000,
  hour: 3_600_000,
  minute: 60_000,
  second: 1_000,
};

/** A number as the period library reads it: fixed point with one decimal place, further digits dropped. */
function tenths(number: string | undefined): number {
  if (number === undefined) return 0;
  const [whole, fraction = ''] = number.split(/[.,]/);
  return Number(whole) * 10 + Number(fraction.slice(0, 1) || '0');
}

/**
 * Milliseconds in an ISO-8601 duration, read as Knative Eventing reads a delivery's backoffDelay,
 * timeout and retryAfterMax (pkg/kncloudevents/retries.go: github.com/rickb777/date v1.13.0
 * period.Parse, then Duration()): any of Y, M, W, D and, after T, H, M, S; a decimal fraction with
 * `.` or `,`, of which only the first digit counts; a year 365.2425 days, a month 30.436875; `P0` is
 * zero. Refused although the library takes them: a negative duration (no delivery setting may be
 * one), a T with nothing after it (`P1DT`), and numbers without digits on both sides of the point.
 * Not followed: the library's rounding of a month's fraction to tenths of a day when smaller units
 * come after it (`P1.5M1D`).
 */
export function isoDurationMs(value: string): number {
  if (value === 'P0') return 0;
  const number = '(\\d+(?:[.,]\\d+)?)';
  const match = new RegExp(`^([-+]?)P(?:${number}Y)?(?:${number}M)?(?:${number}W)?(?:${number}D)?(?:T(?:${number}H)?(?:${number}M)?(?:${number}S)?)?$`).exec(
    value,
  );
  if (!match || value.endsWith('T') || match.slice(2).every((part) => part === undefined)) {
    throw new Error(`${JSON.stringify(value)} is not an ISO-8601 duration (for example PT0.5S, PT2S, PT1M)`);
  }
  if (match[1] === '-') throw new Error(`${JSON.stringify(value)} is negative; a delivery duration must not be`);
  const [years, months, weeks, days, hours, minutes, seconds] = match.slice(2).map(tenths) as [number, number, number, number, number, number, number];
  const total =
    years * msPer.year + months * msPer.month + weeks * msPer.week + days * msPer.day + hours * msPer.hour + minutes * msPer.minute + seconds * msPer.second;
  return total / 10;
}

/** The parts of a policy that decide retries and waits. */
export type RetryPolicy = Pick<DeliveryPolicy, 'retry' | 'backoffPolicy' | 'backoffDelayMs' | 'retryAfterMaxMs'>;

/** What one HTTP attempt produced: a status (with headers and body) or no response at all. */
export type AttemptOutcome = { status: number; headers?: Record<string, string | string[] | undefined>; body?: string } | { error: Error };

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
