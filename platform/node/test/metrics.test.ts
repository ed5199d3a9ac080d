import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { subresourceFor } from '../kubelet-server.js';
import { cadvisorText, NodeMetrics } from '../metrics.js';
import { groupUsage, parseProcStat } from '../proc-stats.js';

test('/proc/PID/stat is read past a command name holding spaces and parentheses', () => {
  const line = '4242 (node (worker) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 900 1000000 2048 18446744073709551615';
  assert.deepEqual(parseProcStat(line), { pid: 4242, pgid: 4242, utime: 250, stime: 50, rss: 2048 });
  assert.equal(parseProcStat('garbage'), undefined);
});

test('a process group’s CPU and memory come from the kernel’s numbers for every process in it', async (t) => {
  const child = spawn(
    process.execPath,
    [
      '-e',
      'const a = Buffer.alloc(64 * 1024 * 1024, 1); let x = 0; const end = Date.now() + 300; while (Date.now() < end) x++; setInterval(() => a[0] += x, 1000)',
    ],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  t.after(() => process.kill(-child.pid!, 'SIGKILL'));
  await new Promise((resolve) => setTimeout(resolve, 800));
  const usage = (await groupUsage(new Set([child.pid!]))).get(child.pid!);
  assert.ok(usage, 'the group is found');
  assert.equal(usage.processes, 1);
  assert.ok(usage.rssBytes > 64 * 1024 * 1024, `resident set ${usage.rssBytes} holds the 64 MiB buffer`);
  assert.ok(usage.userSeconds + usage.systemSeconds >= 0.2, `cpu ${usage.userSeconds + usage.systemSeconds} s after a 300 ms busy loop`);
});

test('cAdvisor’s series: one per container and one per pod (container=""), with its labels, counters and limits', () => {
  const sample = {
    namespace: 'promsnap',
    pod: 'simulation-1',
    podUid: 'u1',
    container: 'simulation',
    containerId: 'abc',
    image: 'dev.local/simulation:0.1.0',
    pid: 10,
    startedAtMs: 1_700_000_000_000,
    memoryLimitBytes: 268_435_456,
  };
  const text = cadvisorText(
    [sample, { ...sample, container: 'queue-proxy', containerId: 'def', image: 'ko://knative.dev/serving/cmd/queue', pid: 11, memoryLimitBytes: 0 }],
    new Map([
      [10, { userSeconds: 1.5, systemSeconds: 0.5, rssBytes: 1_000, processes: 1 }],
      [11, { userSeconds: 1, systemSeconds: 0, rssBytes: 500, processes: 2 }],
    ]),
  );
  assert.match(text, /# TYPE container_cpu_usage_seconds_total counter/);
  assert.match(
    text,
    /\ncontainer_cpu_usage_seconds_total\{container="simulation",id="\/kubepods\/podu1\/abc",image="dev\.local\/simulation:0\.1\.0",name="abc",namespace="promsnap",pod="simulation-1"\} 2\n/,
  );
  assert.match(text, /\ncontainer_cpu_usage_seconds_total\{container="",id="\/kubepods\/podu1",image="",name="",namespace="promsnap",pod="simulation-1"\} 3\n/);
  assert.match(text, /\ncontainer_memory_working_set_bytes\{container="",[^}]*\} 1500\n/);
  assert.match(text, /\ncontainer_spec_memory_limit_bytes\{container="simulation",[^}]*\} 268435456\n/);
  assert.match(text, /\ncontainer_start_time_seconds\{container="queue-proxy",[^}]*\} 1700000000\n/);
});

test('the kubelet registry counts running pods and containers when scraped', async () => {
  const metrics = new NodeMetrics('promsnap-node', () => ({ pods: 2, containers: 3 }));
  metrics.startedContainers.inc({ container_type: 'container' });
  const text = await metrics.registry.metrics();
  assert.match(text, /\nkubelet_running_pods 2\n/);
  assert.match(text, /\nkubelet_running_containers\{container_state="running"\} 3\n/);
  assert.match(text, /kubelet_node_name\{node="promsnap-node"\} 1/);
  assert.match(text, /kubelet_started_containers_total\{container_type="container"\} 1/);
});

test('paths authorise as the kubelet’s subresources: metrics, stats, log, proxy', () => {
  assert.equal(subresourceFor('/metrics'), 'metrics');
  assert.equal(subresourceFor('/metrics/cadvisor'), 'metrics');
  assert.equal(subresourceFor('/stats/summary'), 'stats');
  assert.equal(subresourceFor('/logs/'), 'log');
  assert.equal(subresourceFor('/pods'), 'proxy');
  assert.equal(subresourceFor('/metricsX'), 'proxy');
});
