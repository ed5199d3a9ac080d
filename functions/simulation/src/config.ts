// The simulation service's settings, read once at start-up from the environment (Knative's runtime
// contract sets PORT, K_SERVICE and K_REVISION; the rest come from the Service manifest).
import { readConfig, type RuntimeSettings } from '../../runtime/src/contract.js';
import { parseLabels } from './labels.js';

export interface LatencyRange {
  minMs: number;
  maxMs: number;
}

export interface SimulationConfig extends RuntimeSettings {
  /** Range of the simulated work time of GET /simulate-requests. */
  latency: LatencyRange;
  /** Extra labels on every series (SIMULATION_LABELS), besides app="simulation". */
  labels: Record<string, string>;
}

export const defaults = {
  // 1 ms to 1 s covers the histogram's buckets from the first to the last.
  latencyMinMs: 1,
  latencyMaxMs: 1_000,
  // Below Kubernetes' default 30 s termination grace period, so the drain ends before SIGKILL does.
  shutdownGraceMs: 25_000,
} as const;

/** Throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): SimulationConfig {
  return readConfig(
    env,
    { shutdownGraceMs: defaults.shutdownGraceMs, maxShutdownGraceMs: 600_000 },
    (read) => {
      const minMs = read.integer('SIMULATION_LATENCY_MIN_MS', defaults.latencyMinMs, { min: 0, max: 60_000 });
      const maxMs = read.integer('SIMULATION_LATENCY_MAX_MS', defaults.latencyMaxMs, { min: 0, max: 60_000 });
      const labels = parseLabels('SIMULATION_LABELS', read.string('SIMULATION_LABELS', ''));
      for (const problem of labels.problems) read.problem(problem);
      return { latency: { minMs, maxMs }, labels: labels.labels };
    },
    ({ latency: { minMs, maxMs }, shutdownGraceMs }, read) => {
      if (minMs > maxMs) {
        read.problem(`SIMULATION_LATENCY_MIN_MS (${minMs}) must not exceed SIMULATION_LATENCY_MAX_MS (${maxMs})`);
      }
      // A simulated request longer than the grace would be cut off by every shutdown.
      if (maxMs >= shutdownGraceMs) {
        read.problem(
          `SIMULATION_LATENCY_MAX_MS (${maxMs}) must be below SHUTDOWN_GRACE_MS (${shutdownGraceMs}) so in-flight requests finish during a shutdown`,
        );
      }
    },
  );
}
