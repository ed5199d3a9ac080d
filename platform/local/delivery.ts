// What Knative's dispatcher does with a Trigger's delivery policy, so the local ping emitter retries,
// backs off and dead-letters exactly as a cluster would: the attempts loop and the dead letter's
// extensions. The policy and its arithmetic (which outcomes are retried, the waits) are
// platform/manifests/delivery.ts's. Pure: no I/O here; the emitter (ping.ts) supplies send and sleep.
import { nextStep, type AttemptOutcome, type DeliveryPolicy as DeliverySettings, type Destination, type RetryPolicy } from '../manifests/index.js';

/** A Trigger's delivery settings with the dead-letter sink resolved to the URL the emitter sends to. */
export type DeliveryPolicy = Omit<DeliverySettings, 'deadLetterSink'> & {
  /** Resolved dead-letter sink URL, when the Trigger has one. */
  deadLetterSink?: string;
};

/** Knative's extension keys and the 1024-character cap on knativeerrordata (pkg/kncloudevents/attributes). */
export const knativeErrorDataMaxLength = 1024;
/** The broker ingress stamps this TTL on every event; the dead-letter copy still carries it. */
export const knativeBrokerDefaultTtl = 255;

/** The settings platform/manifests/delivery.ts reads, with `resolveSink` turning the dead-letter Destination into a URL. */
export function withDeadLetterUrl(settings: DeliverySettings, resolveSink: (destination: Destination) => string): DeliveryPolicy {
  const { deadLetterSink, ...rest } = settings;
  return deadLetterSink === undefined ? rest : { ...rest, deadLetterSink: resolveSink(deadLetterSink) };
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
