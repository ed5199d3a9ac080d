// `load`: hey against the simulation's Knative URL (its Service's status.url) while an informer
// watches the simulation's pods, printing a line each time the pod count or ready count changes; at
// the end hey's summary, the peak pod count and how long the autoscaler took to add the first pod.
// With --via the requests go to an ingress address instead (a port-forward to Kourier on kind) with
// the URL's host as Host header, which is how the ingress picks the Knative Service.
// ScaleTracker is the pure part (counts in, changes out); runLoad is the wiring.
import { CoreV1Api, makeInformer, type Informer, type ObjectCache, type V1Pod } from '@kubernetes/client-node';
import { runHey, type HeyRun, type HeySummary } from '../tools/hey.js';
import { MissingToolError } from '../tools/find.js';
import type { Command } from './cli.js';
import { CliError, describeRequestError, exitCodes, objectsMissing } from './errors.js';
import { readObject, requireKnative, type Cluster } from './kube.js';
import { loadTarget, type ObjectRef } from './pipeline.js';
import { pipelineStatus } from './status.js';

export interface PodCounts {
  /** Pods that exist and are not terminating or finished. */
  pods: number;
  /** Of those, the ones whose Ready condition is True. */
  ready: number;
}

export function countPods(pods: readonly V1Pod[]): PodCounts {
  const active = pods.filter((pod) => !pod.metadata?.deletionTimestamp && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed');
  const ready = active.filter((pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  return { pods: active.length, ready: ready.length };
}

export interface ScaleChange extends PodCounts {
  /** Wall-clock time of the change. */
  time: Date;
  /** Milliseconds since the load started (0 for changes seen before it did). */
  elapsedMs: number;
}

/** Changes kept for the JSON report; a long run that flaps keeps its first ones and a count. */
const maxChanges = 1_000;

/** Follows the pod counts through a run: the changes, the peak, the first scale-up. */
export class ScaleTracker {
  readonly initial: PodCounts;
  private current: PodCounts;
  readonly changes: ScaleChange[] = [];
  droppedChanges = 0;
  peakPods: number;
  peakReady: number;
  /** Milliseconds from the start of the load to the first pod beyond the initial count. */
  firstScaleUpMs: number | undefined;
  private loadStartMs: number | undefined;

  constructor(initial: PodCounts) {
    this.initial = initial;
    this.current = initial;
    this.peakPods = initial.pods;
    this.peakReady = initial.ready;
  }

  /** The moment hey starts: elapsed times count from here. */
  start(atMs: number): void {
    this.loadStartMs = atMs;
  }

  /** Records new counts; returns the change, or undefined when neither count moved. */
  update(counts: PodCounts, at: Date): ScaleChange | undefined {
    if (counts.pods === this.current.pods && counts.ready === this.current.ready) return undefined;
    this.current = counts;
    const elapsedMs = this.loadStartMs === undefined ? 0 : Math.max(0, at.getTime() - this.loadStartMs);
    const change = { ...counts, time: at, elapsedMs };
    this.peakPods = Math.max(this.peakPods, counts.pods);
    this.peakReady = Math.max(this.peakReady, counts.ready);
    if (this.firstScaleUpMs === undefined && counts.pods > this.initial.pods) this.firstScaleUpMs = elapsedMs;
    if (this.changes.length < maxChanges) this.changes.push(change);
    else this.droppedChanges++;
    return change;
  }
}

const columns = { time: 10, elapsed: 10, pods: 6 };

export function changeHeader(): string {
  return `${'TIME'.padEnd(columns.time)}${'ELAPSED'.padEnd(columns.elapsed)}${'PODS'.padEnd(columns.pods)}READY\n`;
}

/** One line per change, in fixed columns so lines printed as they happen still line up. */
export function formatChange(change: ScaleChange, note = ''): string {
  const time = change.time.toTimeString().slice(0, 8);
  const elapsed = `${(change.elapsedMs / 1000).toFixed(1)}s`;
  return `${time.padEnd(columns.time)}${elapsed.padEnd(columns.elapsed)}${String(change.pods).padEnd(columns.pods)}${change.ready}${note}\n`;
}

function seconds(value: number | undefined): string {
  return value === undefined ? '-' : value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

/** hey's result and the scaling, as the closing lines of a run. */
export function formatSummary(summary: HeySummary, tracker: ScaleTracker): string {
  const responses = Object.values(summary.statusCodes).reduce((a, b) => a + b, 0);
  const failed = Object.values(summary.errors).reduce((a, b) => a + b, 0);
  const codes = Object.entries(summary.statusCodes)
    .map(([code, count]) => `${count} x ${code}`)
    .join(', ');
  const percentiles = ['50', '95', '99']
    .filter((p) => summary.percentiles[p] !== undefined)
    .map((p) => `p${p} ${seconds(summary.percentiles[p])}`)
    .join(', ');
  const lines = [`hey: ${responses} responses in ${summary.totalSeconds.toFixed(1)} s (${summary.requestsPerSecond.toFixed(1)}/s)${codes ? `: ${codes}` : ''}`];
  if (percentiles) lines.push(`latency: ${percentiles}, slowest ${seconds(summary.slowestSeconds)}`);
  if (failed > 0) {
    lines.push(
      `errors: ${Object.entries(summary.errors)
        .map(([text, count]) => `${count} x ${text}`)
        .join('; ')}`,
    );
  }
  lines.push(
    `pods: peak ${tracker.peakPods} (${tracker.peakReady} ready), ${tracker.initial.pods} at start; ` +
      (tracker.firstScaleUpMs === undefined
        ? 'no scale-up during the run'
        : `first scale-up ${(tracker.firstScaleUpMs / 1000).toFixed(1)} s after the load started`),
  );
  return lines.join('\n') + '\n';
}

/** Where hey sends: the ksvc's URL itself, or the --via address with the URL's host as Host header. */
export interface LoadTarget {
  /** The service's URL with the path: what each request asks for. */
  url: string;
  /** What hey connects to: url itself, or the same path on the --via address. */
  requestUrl: string;
  /** The Host header hey sets (hey -host), only with --via. */
  host: string | undefined;
}

export function loadTargetFor(serviceUrl: string, path: string, via: string | undefined): LoadTarget {
  const url = `${serviceUrl.replace(/\/+$/, '')}${path}`;
  if (via === undefined) return { url, requestUrl: url, host: undefined };
  // URL.host keeps a non-default port, as a client of the URL itself would send it.
  return { url, requestUrl: `${via.replace(/\/+$/, '')}${path}`, host: new URL(serviceUrl).host };
}

/** The run's opening line: where the requests go and, with --via, under which Host. */
export function startLine(target: LoadTarget, command: Extract<Command, { name: 'load' }>, selector: string): string {
  const where = target.host === undefined ? target.url : `${target.url} via ${command.via} (Host: ${target.host})`;
  return `Sending load to ${where} for ${command.duration} with ${command.concurrency} workers (hey); watching pods ${selector}\n`;
}

export function loadReport(target: LoadTarget, command: Extract<Command, { name: 'load' }>, summary: HeySummary, tracker: ScaleTracker): unknown {
  return {
    url: target.url,
    // null without --via: the requests went to url itself.
    via: target.host === undefined ? null : { address: command.via, requestUrl: target.requestUrl, host: target.host },
    duration: command.duration,
    concurrency: command.concurrency,
    hey: summary,
    pods: {
      initial: tracker.initial,
      peakPods: tracker.peakPods,
      peakReady: tracker.peakReady,
      firstScaleUpSeconds: tracker.firstScaleUpMs === undefined ? null : tracker.firstScaleUpMs / 1000,
      changes: tracker.changes.map((change) => ({
        time: change.time.toISOString(),
        elapsedSeconds: change.elapsedMs / 1000,
        pods: change.pods,
        ready: change.ready,
      })),
      droppedChanges: tracker.droppedChanges,
    },
  };
}

export interface LoadIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Aborted on Ctrl-C: hey is stopped early and the run reported as it stands. */
  signal?: AbortSignal;
}

/** The simulation's URL from its Knative Service, with a warning when it is not Ready. */
async function targetUrl(cluster: Cluster, namespace: string, io: LoadIo): Promise<string> {
  const ref: ObjectRef = { resource: 'ksvc', namespace, name: loadTarget.name };
  const ksvc = await readObject(cluster, ref);
  if (ksvc === undefined) throw objectsMissing([ref]);
  const [row] = pipelineStatus([{ ref, object: ksvc }]).rows;
  const url = (ksvc as { status?: { url?: string } }).status?.url;
  if (!url) {
    throw new CliError(
      [
        `ksvc/${ref.name} in namespace ${namespace} has no URL yet (Ready ${row?.ready}${row?.reason ? `, ${row.reason}` : ''}).`,
        'See what holds it up with `npm run cluster -- status`.',
      ],
      exitCodes.notReady,
    );
  }
  if (row && row.ready !== 'True') {
    io.err(`warning: ksvc/${ref.name} is not Ready (${row.reason}${row.message ? `: ${row.message}` : ''}); sending load anyway\n`);
  }
  return url;
}

type PodInformer = Informer<V1Pod> & ObjectCache<V1Pod>;

/**
 * runLoad as a command runs it (`npm run cluster -- load`, `npm run load`): Ctrl-C ends the load early
 * (hey prints its summary on SIGINT) and what was measured is reported; a second Ctrl-C ends the process.
 */
export function runLoadUntilInterrupted(cluster: Cluster, command: Extract<Command, { name: 'load' }>, io: Omit<LoadIo, 'signal'>): Promise<number> {
  const interrupted = new AbortController();
  process.once('SIGINT', () => {
    io.err('\ninterrupted: stopping hey and reporting what was measured (Ctrl-C again to quit now)\n');
    interrupted.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return runLoad(cluster, command, { ...io, signal: interrupted.signal });
}

export async function runLoad(cluster: Cluster, command: Extract<Command, { name: 'load' }>, io: LoadIo): Promise<number> {
  await requireKnative(cluster, ['serving']);
  const namespace = command.namespaces.pipeline;
  const target = loadTargetFor(await targetUrl(cluster, namespace, io), command.path, command.via);

  const selector = `${loadTarget.podLabel}=${loadTarget.name}`;
  const what = `watch pods ${selector} in namespace ${namespace}`;
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const informer: PodInformer = makeInformer(
    cluster.kubeConfig,
    `/api/v1/namespaces/${namespace}/pods`,
    () => core.listNamespacedPod({ namespace, labelSelector: selector }),
    selector,
  );
  // The informer reports a failed list or watch here and then gives up (it retries only timeouts).
  let watching = false;
  let stopped = false;
  let watchError: unknown;
  let restart: NodeJS.Timeout | undefined;
  informer.on('error', (err) => {
    if (!watching) {
      watchError = err;
      return;
    }
    if (stopped) return;
    // Mid-run the load goes on: say so, and start the informer again.
    const described = describeRequestError(err, { server: cluster.server, context: cluster.context, what });
    io.err(`warning: pod watch interrupted (${described instanceof Error ? described.message.split('\n')[0] : String(described)}); retrying\n`);
    restart = setTimeout(() => {
      if (!stopped) informer.start().catch(() => undefined);
    }, 1_000);
  });
  await informer.start();
  if (watchError !== undefined) throw describeRequestError(watchError, { server: cluster.server, context: cluster.context, what });
  watching = true;

  const table = command.output === 'table';
  const tracker = new ScaleTracker(countPods(informer.list(namespace)));
  informer.on('change', () => {
    const change = tracker.update(countPods(informer.list(namespace)), new Date());
    if (change && table) io.out(formatChange(change));
  });

  // The load starts as hey is launched: elapsed times and the first scale-up count from here.
  tracker.start(Date.now());
  if (table) {
    io.out(`${startLine(target, command, selector)}\n`);
    io.out(changeHeader());
    io.out(formatChange({ ...tracker.initial, time: new Date(), elapsedMs: 0 }, '  (at start)'));
  }

  let hey: HeyRun;
  try {
    hey = await runHey({
      url: target.requestUrl,
      duration: command.duration,
      concurrency: command.concurrency,
      ...(target.host === undefined ? {} : { host: target.host }),
    });
  } catch (err) {
    stopped = true;
    await informer.stop();
    if (err instanceof MissingToolError) throw new CliError([`hey is not installed.`, `Install it with: ${err.installCommand}`], exitCodes.notReady);
    throw err;
  }
  const abort = () => void hey.stop();
  io.signal?.addEventListener('abort', abort, { once: true });

  let summary: HeySummary;
  try {
    summary = await hey.done;
  } catch (err) {
    throw new CliError([`hey failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`], exitCodes.notReady);
  } finally {
    stopped = true;
    clearTimeout(restart);
    io.signal?.removeEventListener('abort', abort);
    await informer.stop();
  }

  if (table) io.out(`\n${formatSummary(summary, tracker)}`);
  else io.out(JSON.stringify(loadReport(target, command, summary, tracker), null, 2) + '\n');
  return exitCodes.ok;
}
