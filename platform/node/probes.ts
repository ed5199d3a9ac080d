// The kubelet's probe worker (pkg/kubelet/prober/worker.go doProbe) as a pure state machine: one per
// container and probe type. The pod worker asks it on every tick what to do, runs the probe when told to,
// and feeds the outcome back; the worker decides when a result is published (thresholds), when it holds
// (a failed liveness probe until the container restarts) and when it stops.
import type { V1Probe } from '@kubernetes/client-node';

export type ProbeType = 'readiness' | 'liveness' | 'startup';
export type ProbeResult = 'success' | 'failure' | 'unknown';

export interface ProbeTiming {
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

/** The API server defaults these; a spec read from elsewhere gets the same defaults here. */
export function probeTiming(probe: V1Probe): ProbeTiming {
  return {
    initialDelaySeconds: probe.initialDelaySeconds ?? 0,
    periodSeconds: probe.periodSeconds ?? 10,
    timeoutSeconds: probe.timeoutSeconds ?? 1,
    successThreshold: probe.successThreshold ?? 1,
    failureThreshold: probe.failureThreshold ?? 3,
  };
}

/** What the prober knows of the container at a tick. */
export interface ProbeTarget {
  /** Changes on every (re)start; undefined before the first start. */
  containerId: string | undefined;
  running: boolean;
  terminated: boolean;
  startedAtMs: number | undefined;
  /** The startup probe passed (or there is none). */
  started: boolean;
  /** Whether a terminated container will be restarted (its restart policy and exit code). */
  willRestart: boolean;
  podDeleting: boolean;
  podTerminal: boolean;
}

export type ProbeStep = 'probe' | 'wait' | 'stop';

const initialResults: Record<ProbeType, ProbeResult> = { readiness: 'failure', liveness: 'success', startup: 'unknown' };

export class ProbeWorker {
  /** The published result the rest of the node acts on. */
  result: ProbeResult;
  private containerId: string | undefined;
  private onHold = false;
  private lastResult: ProbeResult = 'unknown';
  private resultRun = 0;

  constructor(
    readonly type: ProbeType,
    readonly timing: ProbeTiming,
  ) {
    this.result = initialResults[type];
  }

  /** What to do at this tick; updates the published result where the kubelet does so without probing. */
  step(target: ProbeTarget, nowMs: number): ProbeStep {
    if (target.podTerminal) return 'stop';
    if (target.containerId === undefined) return 'wait';
    if (target.containerId !== this.containerId) {
      this.containerId = target.containerId;
      this.result = initialResults[this.type];
      this.onHold = false;
    }
    if (this.onHold) return 'wait';
    if (!target.running) {
      this.result = 'failure';
      return target.terminated && !target.willRestart ? 'stop' : 'wait';
    }
    // A pod being deleted keeps its readiness probed (queue-proxy turns unready while draining); liveness
    // and startup stop, counted as passing so nothing restarts a container that is being stopped.
    if (target.podDeleting && this.type !== 'readiness') {
      this.result = 'success';
      return 'stop';
    }
    if (target.startedAtMs === undefined || nowMs - target.startedAtMs < this.timing.initialDelaySeconds * 1000) return 'wait';
    // The startup probe runs until the container has started; the others only after.
    if (target.started === (this.type === 'startup')) return 'wait';
    return 'probe';
  }

  /**
   * The outcome of a probe run; `error` (the probe could not be made at all) counts for nothing, as in
   * the kubelet. Returns true when the published result changed.
   */
  record(outcome: ProbeResult | 'error'): boolean {
    if (outcome === 'error') return false;
    if (outcome === this.lastResult) this.resultRun++;
    else {
      this.lastResult = outcome;
      this.resultRun = 1;
    }
    if ((outcome === 'failure' && this.resultRun < this.timing.failureThreshold) || (outcome === 'success' && this.resultRun < this.timing.successThreshold)) {
      return false;
    }
    const changed = this.result !== outcome;
    this.result = outcome;
    // A failed liveness probe restarts the container; a decided startup probe is done. Both wait for the
    // next container before probing again.
    if ((this.type === 'liveness' && outcome === 'failure') || this.type === 'startup') {
      this.onHold = true;
      this.resultRun = 0;
    }
    return changed;
  }
}

/** started: running and past its startup probe (or without one), as prober_manager's isContainerStarted says. */
export function containerStarted(running: boolean, startup: ProbeWorker | undefined): boolean {
  return running && (startup === undefined || startup.result === 'success');
}

/** ready: started, running and passing its readiness probe (or without one). */
export function containerReady(running: boolean, started: boolean, readiness: ProbeWorker | undefined): boolean {
  return running && started && (readiness === undefined || readiness.result === 'success');
}
