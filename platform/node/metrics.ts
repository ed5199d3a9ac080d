// The node's metrics as a kubelet serves them: /metrics (kubelet_* and prober_* from a private prom-client
// registry) and /metrics/cadvisor (container_* per container and per pod, with cAdvisor's labels
// namespace, pod, container, image, name, id, so the reference's queries and the PodMemoryHigh alert
// read them unchanged). cAdvisor's text is written here: its counters are set from the kernel's totals,
// which prom-client's counters cannot be.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GroupUsage } from './proc-stats.js';

export interface ContainerSample {
  namespace: string;
  pod: string;
  podUid: string;
  container: string;
  /** The container ID without its runtime prefix. */
  containerId: string;
  image: string;
  /** The container's main process (and process group). */
  pid: number;
  startedAtMs: number;
  /** resources.limits.memory in bytes, 0 for none (cAdvisor's convention). */
  memoryLimitBytes: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly startedContainers: Counter<'container_type'>;
  readonly probes: Counter<'probe_type' | 'result' | 'container' | 'pod' | 'namespace'>;
  readonly podStartDuration: Histogram;

  constructor(nodeName: string, running: () => { pods: number; containers: number }) {
    const registers = [this.registry];
    new Gauge({ name: 'kubelet_node_name', help: "The node's name. The count is always 1.", labelNames: ['node'] as const, registers }).set(
      { node: nodeName },
      1,
    );
    new Gauge({
      name: 'kubelet_running_pods',
      help: 'Number of pods that have a running pod sandbox.',
      registers,
      collect() {
        this.set(running().pods);
      },
    });
    new Gauge({
      name: 'kubelet_running_containers',
      help: 'Number of containers currently running.',
      labelNames: ['container_state'] as const,
      registers,
      collect() {
        this.set({ container_state: 'running' }, running().containers);
      },
    });
    this.startedContainers = new Counter({
      name: 'kubelet_started_containers_total',
      help: 'Cumulative number of containers started.',
      labelNames: ['container_type'] as const,
      registers,
    });
    this.probes = new Counter({
      name: 'prober_probe_total',
      help: 'Cumulative number of a liveness, readiness or startup probe for a container by result.',
      labelNames: ['probe_type', 'result', 'container', 'pod', 'namespace'] as const,
      registers,
    });
    this.podStartDuration = new Histogram({
      name: 'kubelet_pod_start_duration_seconds',
      help: 'Duration in seconds from the node seeing a pod for the first time to the pod starting to run.',
      buckets: [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120],
      registers,
    });
  }
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(values: Record<string, string>): string {
  return `{${Object.entries(values)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',')}}`;
}

const cadvisorMetrics = [
  {
    name: 'container_cpu_usage_seconds_total',
    type: 'counter',
    help: 'Cumulative cpu time consumed in seconds.',
    value: (u: GroupUsage) => u.userSeconds + u.systemSeconds,
  },
  { name: 'container_cpu_user_seconds_total', type: 'counter', help: 'Cumulative user cpu time consumed in seconds.', value: (u: GroupUsage) => u.userSeconds },
  {
    name: 'container_cpu_system_seconds_total',
    type: 'counter',
    help: 'Cumulative system cpu time consumed in seconds.',
    value: (u: GroupUsage) => u.systemSeconds,
  },
  {
    name: 'container_memory_working_set_bytes',
    type: 'gauge',
    help: 'Current working set in bytes (the resident set of its processes).',
    value: (u: GroupUsage) => u.rssBytes,
  },
  { name: 'container_memory_rss', type: 'gauge', help: 'Size of RSS in bytes.', value: (u: GroupUsage) => u.rssBytes },
  {
    name: 'container_memory_usage_bytes',
    type: 'gauge',
    help: 'Current memory usage in bytes (the resident set of its processes).',
    value: (u: GroupUsage) => u.rssBytes,
  },
  { name: 'container_processes', type: 'gauge', help: 'Number of processes running inside the container.', value: (u: GroupUsage) => u.processes },
] as const;

/** /metrics/cadvisor's text: one series per container and one per pod (container=""), as cAdvisor writes them. */
export function cadvisorText(samples: readonly ContainerSample[], usage: ReadonlyMap<number, GroupUsage>): string {
  const empty: GroupUsage = { userSeconds: 0, systemSeconds: 0, rssBytes: 0, processes: 0 };
  const rows: Array<{ labels: Record<string, string>; usage: GroupUsage; startSeconds: number; limit: number }> = [];
  const pods = new Map<string, { labels: Record<string, string>; usage: GroupUsage; startSeconds: number; limit: number }>();
  for (const sample of samples) {
    const used = usage.get(sample.pid) ?? empty;
    const podId = `/kubepods/pod${sample.podUid}`;
    rows.push({
      labels: {
        container: sample.container,
        id: `${podId}/${sample.containerId}`,
        image: sample.image,
        name: sample.containerId,
        namespace: sample.namespace,
        pod: sample.pod,
      },
      usage: used,
      startSeconds: sample.startedAtMs / 1000,
      limit: sample.memoryLimitBytes,
    });
    const pod = pods.get(sample.podUid) ?? {
      labels: { container: '', id: podId, image: '', name: '', namespace: sample.namespace, pod: sample.pod },
      usage: { ...empty },
      startSeconds: sample.startedAtMs / 1000,
      limit: 0,
    };
    pod.usage = {
      userSeconds: pod.usage.userSeconds + used.userSeconds,
      systemSeconds: pod.usage.systemSeconds + used.systemSeconds,
      rssBytes: pod.usage.rssBytes + used.rssBytes,
      processes: pod.usage.processes + used.processes,
    };
    pod.startSeconds = Math.min(pod.startSeconds, sample.startedAtMs / 1000);
    pods.set(sample.podUid, pod);
  }
  const all = [...pods.values(), ...rows];
  const lines: string[] = [];
  for (const metric of cadvisorMetrics) {
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
    for (const row of all) lines.push(`${metric.name}${labels(row.labels)} ${metric.value(row.usage)}`);
  }
  lines.push('# HELP container_spec_memory_limit_bytes Memory limit for the container.', '# TYPE container_spec_memory_limit_bytes gauge');
  for (const row of all) lines.push(`container_spec_memory_limit_bytes${labels(row.labels)} ${row.limit}`);
  lines.push('# HELP container_start_time_seconds Start time of the container since unix epoch in seconds.', '# TYPE container_start_time_seconds gauge');
  for (const row of all) lines.push(`container_start_time_seconds${labels(row.labels)} ${row.startSeconds}`);
  return lines.join('\n') + '\n';
}
