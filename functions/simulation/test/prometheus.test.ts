import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../../platform/tools/wait.js';
import { queryPrometheus, startPrometheus, type RunningPrometheus } from '../../../platform/tools/prometheus.js';
import { UNMATCHED_ROUTE } from '../src/app.js';
import { get, startSimulation } from './helper.js';

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

test('a real Prometheus scrapes the service and sees the requests it served', async (t) => {
  const sim = await startSimulation(t, { latency: { minMs: 0, maxMs: 20 } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'promsnap-simulation-prometheus-'));
  let prometheus: RunningPrometheus | undefined;
  // One hook, so Prometheus has stopped writing before its folder goes.
  t.after(async () => {
    await prometheus?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  prometheus = await startPrometheus({
    dataDir,
    config: [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: simulation',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${sim.port}']`,
      '',
    ].join('\n'),
  });
  const prometheusUrl = prometheus.url;

  const made = { '/': 5, '/simulate-requests': 4, '/error': 3, [UNMATCHED_ROUTE]: 2 };
  for (let i = 0; i < made['/']; i++) await get(sim.url, '/');
  for (let i = 0; i < made['/simulate-requests']; i++) await get(sim.url, '/simulate-requests');
  for (let i = 0; i < made['/error']; i++) await get(sim.url, '/error');
  await get(sim.url, '/random-1');
  await get(sim.url, '/random-2');

  const up = (): Promise<VectorSample[]> => queryPrometheus<VectorSample>(prometheusUrl, 'up{job="simulation"} == 1');
  await waitFor(async () => (await up()).length === 1, { what: 'the simulation target to be up', timeoutMs: 30_000 });

  // Counts per route as Prometheus stored them, the app's own scrapes of /metrics left out.
  const query = 'sum by (route, statusCode) (simulation_app_requests_total{app="simulation", job="simulation", route!="/metrics"})';
  const stored = await waitFor(
    async () => {
      const result = await queryPrometheus<VectorSample>(prometheusUrl, query);
      const counts = Object.fromEntries(result.map((s) => [`${s.metric['route']} ${s.metric['statusCode']}`, Number(s.value[1])]));
      return counts['/ 200'] === made['/'] ? counts : undefined;
    },
    { what: 'the request counts to reach Prometheus', timeoutMs: 15_000 },
  );
  assert.deepEqual(stored, {
    '/ 200': made['/'],
    '/simulate-requests 200': made['/simulate-requests'],
    '/error 500': made['/error'],
    [`${UNMATCHED_ROUTE} 404`]: made[UNMATCHED_ROUTE],
  });

  const errors = await queryPrometheus<VectorSample>(
    prometheusUrl,
    'simulation_app_request_duration_milliseconds_count{app="simulation", route="/error", code="500"}',
  );
  assert.equal(errors.length, 1);
  assert.equal(Number(errors[0]!.value[1]), made['/error']);
  assert.equal(errors[0]!.metric['method'], 'GET');

  // The default metrics arrive with the same default label.
  const cpu = await queryPrometheus<VectorSample>(prometheusUrl, 'process_cpu_user_seconds_total{app="simulation", job="simulation"}');
  assert.equal(cpu.length, 1);
});
