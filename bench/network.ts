// npm run bench:network [-- --duration 10s] [--concurrency 50] [--rounds 2]
//
// What the network components cost a request, measured in one run as ratios against the same upstream
// reached directly: hey -c 50 inside the test bed's namespace (platform/network/test/testbed.ts) against
// a real simulation process, (1) directly at its pod address, (2) through the Service proxy's ClusterIP,
// (3) through the ingress by Host, (4) through the ingress's own ClusterIP (proxy + ingress, the path an
// in-cluster client of a ksvc takes), each on GET / (no simulated work: the components' ceiling) and on
// GET /simulate-requests (its 1 ms - 1 s simulated latency: what #16's scaling test sends). Rounds are
// interleaved; figures are medians. Prints a Markdown report ending with `name value` lines.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { objectsYaml } from '../platform/manifests/index.js';
import { parseHeySummary, type HeySummary } from '../platform/tools/hey.js';
import { isHeyDuration } from '../platform/tools/hey.js';
import { waitFor } from '../platform/tools/wait.js';
import { ingressServiceObjects } from '../platform/network/ingress-service.js';
import { networkMain, startTestbed, type Testbed } from '../platform/network/test/testbed.js';

const usage = 'usage: npm run bench:network -- [--duration 10s] [--concurrency 50] [--rounds 2]';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10s' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
if (!isHeyDuration(values.duration) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}

const podIp = '10.244.1.50';
const simulationPort = 8080;
const host = 'simulation.promsnap.example.com';

interface Path {
  name: string;
  url: (ips: { service: string; ingress: string }, route: string) => string;
  host?: string;
}

const paths: Path[] = [
  { name: 'direct', url: (_ips, route) => `http://${podIp}:${simulationPort}${route}` },
  { name: 'service proxy', url: (ips, route) => `http://${ips.service}${route}` },
  { name: 'ingress', url: (_ips, route) => `http://10.244.0.1${route}`, host },
  { name: 'ingress via its ClusterIP', url: (ips, route) => `http://${ips.ingress}${route}`, host },
];
const routes = ['/', '/simulate-requests'];

async function main(): Promise<void> {
  const bed = await startTestbed({ knativeIngressCrd: true });
  try {
    const ips = await setUp(bed);
    const results = new Map<string, HeySummary[]>();
    for (let round = 0; round < rounds; round++) {
      for (const route of routes) {
        for (const path of paths) {
          const args = ['-z', values.duration, '-c', String(concurrency), ...(path.host ? ['-host', path.host] : []), path.url(ips, route)];
          const run = await bed.inside('hey', args, { timeoutMs: 120_000 });
          const summary = parseHeySummary(run.stdout);
          const key = `${route} ${path.name}`;
          results.set(key, [...(results.get(key) ?? []), summary]);
          process.stderr.write(`round ${round + 1} ${key}: ${summary.requestsPerSecond.toFixed(0)} req/s, p99 ${ms(summary.percentiles['99'])}\n`);
        }
      }
    }
    process.stdout.write(report(results));
  } finally {
    await bed.stop();
  }
}

/** The simulation as a pod, its Service, a Knative-shaped Ingress, the ingress's own Service. */
async function setUp(bed: Testbed): Promise<{ service: string; ingress: string }> {
  await bed.startInside({
    name: 'simulation',
    command: process.execPath,
    args: ['--import', 'tsx', 'functions/simulation/src/server.ts'],
    env: { ...process.env, PORT: String(simulationPort), LOG_LEVEL: 'warn', K_SERVICE: 'simulation', K_REVISION: 'simulation-00001' },
  });
  let ready = false;
  await bed.startInside({
    name: 'network',
    command: process.execPath,
    args: ['--import', 'tsx', networkMain, `--kubeconfig=${bed.networkKubeconfig}`, '--services', '--ingress=10.244.0.1:80'],
    onLine: (line) => (ready ||= line.includes('"network ready"')),
    readyCheck: { what: 'the network components', check: () => ready },
    readyTimeoutMs: 30_000,
  });
  const slice = (namespace: string, service: string, ip: string, port: number) => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${service}-1, namespace: ${namespace}, labels: {kubernetes.io/service-name: ${service}}}
addressType: IPv4
endpoints: [{addresses: [${ip}]}]
ports: [{name: http, port: ${port}}]`;
  const splits = JSON.stringify([
    {
      serviceNamespace: 'promsnap',
      serviceName: 'simulation-00001',
      servicePort: 80,
      percent: 100,
      appendHeaders: { 'Knative-Serving-Revision': 'simulation-00001', 'Knative-Serving-Namespace': 'promsnap' },
    },
  ]);
  await bed.api.kubectlWith(
    {
      input: `apiVersion: v1
kind: Namespace
metadata: {name: promsnap}
---
apiVersion: v1
kind: Namespace
metadata: {name: knative-serving}
---
apiVersion: v1
kind: Service
metadata: {name: simulation-00001, namespace: promsnap}
spec: {ports: [{name: http, port: 80, targetPort: ${simulationPort}}]}
---
${slice('promsnap', 'simulation-00001', podIp, simulationPort)}
---
${objectsYaml(ingressServiceObjects({ address: '10.244.0.1', port: 80 }))}
---
apiVersion: networking.internal.knative.dev/v1alpha1
kind: Ingress
metadata:
  name: simulation
  namespace: promsnap
  annotations: {networking.knative.dev/ingress.class: promsnap.ingress.networking.knative.dev}
spec:
  rules:
  - hosts: [${host}]
    visibility: ExternalIP
    http: {paths: [{splits: ${splits}}]}
`,
    },
    'apply',
    '-f',
    '-',
  );
  const clusterIp = async (namespace: string, name: string) =>
    (await bed.api.kubectl('get', 'service', '-n', namespace, name, '-o', 'jsonpath={.spec.clusterIP}')).stdout.trim();
  const ips = { service: await clusterIp('promsnap', 'simulation-00001'), ingress: await clusterIp('knative-serving', 'promsnap-ingress') };
  // Every path answers before the clock starts.
  for (const path of paths) {
    await waitFor(
      async () => {
        const run = await bed.inside('hey', ['-n', '1', '-c', '1', ...(path.host ? ['-host', path.host] : []), path.url(ips, '/')], { allowFailure: true });
        return parseHeySummary(run.stdout).statusCodes['200'] === 1;
      },
      { what: `${path.name} to answer`, timeoutMs: 30_000, intervalMs: 200 },
    );
  }
  return ips;
}

function report(results: Map<string, HeySummary[]>): string {
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const lines = [
    `# Network components: throughput (hey -z ${values.duration} -c ${concurrency}, ${rounds} interleaved rounds, medians)`,
    '',
    `Machine: ${os.availableParallelism()} cores, load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; hey, the simulation and the components share these cores.`,
    '',
    '| route | path | req/s | vs direct | p50 | p99 | non-200 |',
    '|---|---|---|---|---|---|---|',
  ];
  const figures: string[] = [];
  for (const route of routes) {
    const direct = median((results.get(`${route} direct`) ?? []).map((s) => s.requestsPerSecond));
    for (const path of paths) {
      const runs = results.get(`${route} ${path.name}`) ?? [];
      const rps = median(runs.map((s) => s.requestsPerSecond));
      const p50 = median(runs.map((s) => s.percentiles['50'] ?? NaN));
      const p99 = median(runs.map((s) => s.percentiles['99'] ?? NaN));
      const failed = runs.reduce((sum, s) => sum + Object.entries(s.statusCodes).reduce((n, [code, count]) => n + (code === '200' ? 0 : count), 0), 0);
      const errors = runs.reduce((sum, s) => sum + Object.values(s.errors).reduce((n, count) => n + count, 0), 0);
      lines.push(`| ${route} | ${path.name} | ${rps.toFixed(0)} | ${(rps / direct).toFixed(2)} | ${ms(p50)} | ${ms(p99)} | ${failed + errors} |`);
      const id = `${route === '/' ? 'root' : 'simulate'}_${path.name.replaceAll(' ', '_')}`;
      figures.push(`network_${id}_rps ${rps.toFixed(0)}`, `network_${id}_p99_ms ${(p99 * 1000).toFixed(1)}`);
    }
  }
  return [...lines, '', '```', ...figures, '```', ''].join('\n');
}

function ms(seconds: number | undefined): string {
  return seconds === undefined || Number.isNaN(seconds) ? '-' : `${(seconds * 1000).toFixed(1)} ms`;
}

await main();
