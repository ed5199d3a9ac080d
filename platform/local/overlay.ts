// The kustomize overlay `npm start` applies: platform/ itself, plus only what must differ on the local
// cluster, in the data dir (<data dir>/overlay/kustomization.yaml) where a user can read it and apply it
// again (`kubectl apply -k <data dir>/overlay`):
// - the project's images named as the local node runs them (dev.local/<artifact>:<tag>: Knative skips
//   tag resolution for dev.local, and the node finds them in its image store);
// - with --ping-every, the PingSource's schedule as a 6-field cron with seconds (Knative's mtping takes it),
//   and the snapshot function's SNAPSHOT_RANGE set to that period (SNAPSHOT_SETTLE at most one), so
//   consecutive range exports still tile time as the manifests' 5m schedule and 5m range do;
// - with --simulation-instances, the simulation Knative Service's min-scale;
// - Prometheus's TSDB on a claim (platform's own persistent-storage component), so a second `npm start`
//   on the same data dir keeps it as it keeps MinIO's bucket (the node's claims live under the data dir).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { formatDuration, parseDuration } from '../../archive/src/duration.js';
import { rangeDefaults } from '../../functions/snapshot/src/range-config.js';

export interface OverlayOptions {
  /** The platform/ folder the overlay builds on. */
  platformDir: string;
  /** Where the overlay's kustomization.yaml goes (a folder of its own in the data dir). */
  dir: string;
  /** Each artifact's bare image name in platform/ -> the reference the local node runs. */
  images: Record<string, string>;
  /** The PingSource schedule to apply instead of the manifest's (6-field cron, from --ping-every). */
  schedule?: string;
  /** The simulation's autoscaling.knative.dev/min-scale to apply instead of the manifest's. */
  simulationMinScale?: number;
  /** Environment of the snapshot Knative Service's container to set (followPingEvery's answer). */
  snapshotEnv?: EnvChange;
}

/** Variables to set in one container of a Knative Service, and where the manifest has them. */
export interface EnvChange {
  /** The container's index in the pod template. */
  container: number;
  /** The names of the container's env entries, in the manifest's order (where a replace must go). */
  existing: string[];
  /** Name -> value; those in `existing` are replaced in place, others appended. */
  set: Record<string, string>;
}

/** The PingSource and Knative Service the overlay patches, as platform/ names them. */
export const pingSource = { namespace: 'promsnap', name: 'snapshot-schedule' } as const;
export const simulationService = { namespace: 'promsnap', name: 'simulation' } as const;
export const snapshotService = { namespace: 'promsnap', name: 'snapshot' } as const;

/** `dev.local/<artifact>:<tag>`, the name the local node runs a project image under. */
export function localImage(artifact: string, tag: string): string {
  return `dev.local/${artifact}:${tag}`;
}

/**
 * --ping-every as a cron schedule that fires exactly that often: with seconds (6 fields) below a minute.
 * Cron steps restart at each minute, hour or day, so only periods dividing the next unit evenly are exact:
 * anything else is refused, naming the nearest that are.
 */
export function everyToCron(text: string): string {
  const match = /^(\d+)(s|m|h)$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new Error(`--ping-every ${JSON.stringify(text)} must be like 10s, 2m or 1h`);
  const n = Number(match[1]);
  const unit = match[2] as 's' | 'm' | 'h';
  const units = { s: { within: 60, next: 'minute' }, m: { within: 60, next: 'hour' }, h: { within: 24, next: 'day' } }[unit];
  if (n >= units.within || units.within % n !== 0) {
    const exact = divisors(units.within).map((d) => `${d}${unit}`);
    const larger = unit === 's' ? ', or whole minutes' : unit === 'm' ? ', or whole hours' : '';
    throw new Error(`--ping-every ${text}: a cron schedule fires exactly every ${text} only if it divides a ${units.next}: use ${exact.join(', ')}${larger}`);
  }
  const step = n === 1 ? '*' : `*/${n}`;
  if (unit === 's') return `${step} * * * * *`;
  if (unit === 'm') return `0 ${step} * * * *`;
  return `0 0 ${step} * * *`;
}

/** --ping-every's period in milliseconds (the text everyToCron accepted). */
export function everyMs(text: string): number {
  const ms = parseDuration(text.trim());
  if (ms === undefined || ms === 0) throw new Error(`--ping-every ${JSON.stringify(text)} must be like 10s, 2m or 1h`);
  return ms;
}

/**
 * With --ping-every, a range export's range follows the pings' period, as SNAPSHOT_RANGE follows the
 * PingSource's schedule in the manifests: consecutive pings then tile time. Its settle time (the
 * function's default when the manifest sets none) is at most one period. Only what changes is returned;
 * instant snapshots (no SNAPSHOT_RANGE) are left as they are.
 */
export function followPingEvery(env: Record<string, string>, periodMs: number | undefined): Record<string, string> {
  const rangeMs = env['SNAPSHOT_RANGE'] === undefined ? undefined : parseDuration(env['SNAPSHOT_RANGE']);
  if (periodMs === undefined || !rangeMs) return {};
  const settleMs = Math.min(parseDuration(env['SNAPSHOT_SETTLE'] ?? '') ?? rangeDefaults.settleMs, periodMs);
  return { SNAPSHOT_RANGE: formatDuration(periodMs), SNAPSHOT_SETTLE: formatDuration(settleMs) };
}

/**
 * JSON patch operations setting env variables of one container. A replace is guarded by a `test` of the
 * entry's name, so a manifest whose env moved fails the apply loudly instead of patching another variable.
 */
export function envPatch(change: EnvChange): unknown[] {
  const base = `/spec/template/spec/containers/${change.container}/env`;
  return Object.entries(change.set).flatMap(([name, value]): unknown[] => {
    const index = change.existing.indexOf(name);
    if (index < 0) return [{ op: 'add', path: `${base}/-`, value: { name, value } }];
    return [
      { op: 'test', path: `${base}/${index}/name`, value: name },
      { op: 'replace', path: `${base}/${index}/value`, value },
    ];
  });
}

function divisors(n: number): number[] {
  return Array.from({ length: n - 1 }, (_, i) => i + 1).filter((d) => n % d === 0);
}

/** The overlay's kustomization, as YAML text with a header saying what it is. */
export function overlayKustomization(options: OverlayOptions): string {
  const platform = path.relative(options.dir, options.platformDir) || '.';
  const patches: unknown[] = [];
  if (options.schedule !== undefined) {
    patches.push({
      target: { group: 'sources.knative.dev', version: 'v1', kind: 'PingSource', ...pingSource },
      patch: stringify([{ op: 'replace', path: '/spec/schedule', value: options.schedule }]),
    });
  }
  if (options.simulationMinScale !== undefined) {
    patches.push({
      target: { group: 'serving.knative.dev', version: 'v1', kind: 'Service', ...simulationService },
      patch: stringify([
        { op: 'replace', path: '/spec/template/metadata/annotations/autoscaling.knative.dev~1min-scale', value: String(options.simulationMinScale) },
      ]),
    });
  }
  if (options.snapshotEnv !== undefined && Object.keys(options.snapshotEnv.set).length > 0) {
    patches.push({
      target: { group: 'serving.knative.dev', version: 'v1', kind: 'Service', ...snapshotService },
      patch: stringify(envPatch(options.snapshotEnv)),
    });
  }
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [platform],
    components: [path.posix.join(platform, 'monitoring', 'persistent-storage')],
    images: Object.entries(options.images).map(([name, reference]) => {
      const colon = reference.lastIndexOf(':');
      return { name, newName: reference.slice(0, colon), newTag: reference.slice(colon + 1) };
    }),
    ...(patches.length > 0 ? { patches } : {}),
  };
  return (
    '# Written by `npm start` (platform/local/overlay.ts) on every start: platform/ as it is, plus what must\n' +
    '# differ on the local cluster (image names, the --ping-every schedule and the snapshot range that\n' +
    "# follows it, the simulation's min-scale, Prometheus's TSDB on a claim). Apply it again with: kubectl apply -k <this folder>\n" +
    stringify(kustomization)
  );
}

/** Writes the overlay into options.dir; returns the folder to `kubectl apply -k`. */
export async function writeOverlay(options: OverlayOptions): Promise<string> {
  await mkdir(options.dir, { recursive: true });
  await writeFile(path.join(options.dir, 'kustomization.yaml'), overlayKustomization(options));
  return options.dir;
}
