// The two kinds of failure a delivery can meet, and the one place that turns them into HTTP answers.
// The status decides what Knative does next (knative.dev/eventing pkg/kncloudevents/retries.go,
// SelectiveRetry): 5xx, 404, 408, 409 and 429 are retried with the Trigger's backoff and then
// dead-lettered; every other 4xx goes to the dead-letter sink at once. So a failure that a later
// attempt can fix is a 5xx, and one that no retry can fix is a 4xx other than those four.
import type { ErrorRequestHandler } from 'express';
import type { Logger } from '../../runtime/src/logger.js';

/** Why a snapshot failed: the `reason` label of snapshot_failures_total. */
export const failureReasons = [
  'invalid_event',
  'too_large',
  'query_not_allowed',
  'range_not_allowed',
  'time_in_future',
  'time_outside_retention',
  'too_many_series',
  'query_rejected',
  'key_conflict',
  'prometheus_unavailable',
  'prometheus_timeout',
  'prometheus_error',
  'storage_unavailable',
  'internal',
] as const;
export type FailureReason = (typeof failureReasons)[number];

/** Statuses answered for failures a retry can fix; Knative retries every one of them. */
export const retryableStatuses = [502, 503, 504] as const;
/** Statuses answered for events no retry can fix; Knative retries none of them (no 404/408/409/429). */
export const rejectedStatuses = [400, 403, 412, 413, 422] as const;

/** A dependency failed in a way a later attempt can fix: answered with a 5xx so Knative retries. */
export class RetryableError extends Error {
  constructor(
    readonly reason: FailureReason,
    /** 502 (bad answer upstream), 503 (unreachable) or 504 (timed out). */
    readonly status: (typeof retryableStatuses)[number],
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

/** The event itself cannot succeed, however often it is retried: a 4xx that says what is wrong. */
export class RejectedEventError extends Error {
  constructor(
    readonly reason: FailureReason,
    /**
     * 400 (not an acceptable event), 403 (asks for queries or a range the operator does not allow), 412 (key holds
     * another event), 413 (body too large), 422 (its instant or its answer cannot be snapshotted).
     */
    readonly status: (typeof rejectedStatuses)[number],
    message: string,
    /** Each problem found, for the response body. */
    readonly problems: string[] = [message],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RejectedEventError';
  }
}

/**
 * A failure of Express's body parser as a refusal like any other bad event, so the route answers and
 * counts it as one: over the limit is 413 `too_large`, a body that cannot be read (bad length, unknown
 * charset or encoding, aborted) is 400 `invalid_event`. Anything else is returned as it is.
 */
export function bodyRefusal(err: unknown): unknown {
  const { type, status, length, limit } = err as { type?: unknown; status?: unknown; length?: unknown; limit?: unknown };
  if (type === 'entity.too.large') {
    const size = typeof length === 'number' ? `${length} bytes` : 'more bytes';
    const message = `the event body (${size}) is over the limit of ${String(limit)} bytes`;
    return new RejectedEventError('too_large', 413, message, [message], { cause: err });
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = `the event body cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    return new RejectedEventError('invalid_event', 400, message, [message], { cause: err });
  }
  return err;
}

/**
 * A read (GET /snapshots, /lastdata) with parameters that cannot be served: 400 naming each problem,
 * before anything is asked of the store.
 */
export class BadRequestError extends Error {
  readonly status = 400;
  readonly reason = 'invalid_parameter';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'BadRequestError';
  }
}

export function failureReason(err: unknown): FailureReason {
  return err instanceof RetryableError || err instanceof RejectedEventError ? err.reason : 'internal';
}

/** The one error handler: 4xx bodies say what is wrong, 5xx bodies hide internals (logs keep them). */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      // Too late for a status: cutting the connection is the only honest answer left.
      log.error('failed after the response started', { err, path: req.path });
      next(err);
      return;
    }
    if (err instanceof RejectedEventError) {
      log.warn('request rejected', { status: err.status, reason: err.reason, problems: err.problems, path: req.path });
      res.status(err.status).json({ error: err.message, reason: err.reason, problems: err.problems, retryable: false });
      return;
    }
    if (err instanceof BadRequestError) {
      log.warn('request refused', { status: err.status, reason: err.reason, problems: err.problems, path: req.path });
      res.status(err.status).json({ error: err.message, reason: err.reason, problems: err.problems, retryable: false });
      return;
    }
    if (err instanceof RetryableError) {
      log.error('dependency failure', { status: err.status, reason: err.reason, err, path: req.path });
      res.status(err.status).json({ error: publicMessage[err.reason], reason: err.reason, retryable: true });
      return;
    }
    // A body parser's failure that no route turned into a RejectedEventError (bodyRefusal).
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const message = err instanceof Error ? err.message : 'bad request';
      log.warn('request refused', { status, err, path: req.path });
      res.status(status).json({ error: message, reason: 'invalid_event', problems: [message], retryable: false });
      return;
    }
    log.error('unexpected error', { err, path: req.path });
    res.status(500).json({ error: publicMessage.internal, reason: 'internal', retryable: true });
  };
}

// What a 5xx body may say: the kind of failure, never hosts, keys or stack traces.
const publicMessage: Record<FailureReason, string> = {
  invalid_event: 'the event was refused',
  too_large: 'the event body is too large',
  query_not_allowed: 'the event asks for queries that are not allowed',
  range_not_allowed: 'the event asks for a range that is not allowed',
  time_in_future: 'the event time is in the future',
  time_outside_retention: 'the event time is older than Prometheus keeps data',
  too_many_series: 'the answer holds more series than a snapshot may',
  query_rejected: 'Prometheus refused the query',
  key_conflict: 'the snapshot key holds another event',
  prometheus_unavailable: 'Prometheus is unreachable; the delivery can be retried',
  prometheus_timeout: 'Prometheus did not answer in time; the delivery can be retried',
  prometheus_error: 'Prometheus answered with an error; the delivery can be retried',
  storage_unavailable: 'the object store is unavailable; the delivery can be retried',
  internal: 'internal error; the delivery can be retried',
};
