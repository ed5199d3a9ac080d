// The pure part of `load`: pods counted as Knative's autoscaler adds and removes them, the changes
// reported, the peak and the time to the first scale-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { changeHeader, countPods, formatChange, formatSummary, loadTargetFor, ScaleTracker } from '../load.js';
import type { HeySummary } from '../../tools/hey.js';

function pod(name: string, ready: boolean, extra: { deleting?: boolean; phase?: string } = {}): V1Pod {
  return {
    metadata: { name, ...(extra.deleting ? { deletionTimestamp: new Date() } : {}) },
    status: { phase: extra.phase ?? 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

test('pods are counted without terminating or finished ones; ready means the Ready condition is True', () => {
  assert.deepEqual(countPods([]), { pods: 0, ready: 0 });
  assert.deepEqual(
    countPods([pod('a', true), pod('b', false), pod('c', true, { deleting: true }), pod('d', false, { phase: 'Succeeded' }), { metadata: { name: 'e' } }]),
    { pods: 3, ready: 1 },
  );
});

test('the tracker reports only changes, keeps the peak and times the first scale-up from the start of the load', () => {
  const tracker = new ScaleTracker({ pods: 1, ready: 1 });
  const t0 = Date.parse('2026-11-25T10:00:00Z');
  tracker.start(t0);
  assert.equal(tracker.update({ pods: 1, ready: 1 }, new Date(t0 + 500)), undefined, 'no change, no line');
  const up = tracker.update({ pods: 2, ready: 1 }, new Date(t0 + 2_500));
  assert.deepEqual(up && [up.pods, up.ready, up.elapsedMs], [2, 1, 2_500]);
  tracker.update({ pods: 3, ready: 2 }, new Date(t0 + 3_000));
  tracker.update({ pods: 3, ready: 3 }, new Date(t0 + 4_000));
  tracker.update({ pods: 1, ready: 1 }, new Date(t0 + 9_000));
  assert.equal(tracker.firstScaleUpMs, 2_500);
  assert.deepEqual([tracker.peakPods, tracker.peakReady], [3, 3]);
  assert.deepEqual(
    tracker.changes.map((c) => [c.elapsedMs, c.pods, c.ready]),
    [
      [2_500, 2, 1],
      [3_000, 3, 2],
      [4_000, 3, 3],
      [9_000, 1, 1],
    ],
  );
});

test('from zero pods, the first pod is the first scale-up; a run without one says so', () => {
  const fromZero = new ScaleTracker({ pods: 0, ready: 0 });
  fromZero.start(1_000);
  fromZero.update({ pods: 1, ready: 0 }, new Date(1_800));
  assert.equal(fromZero.firstScaleUpMs, 800);
  const flat = new ScaleTracker({ pods: 2, ready: 2 });
  flat.start(0);
  flat.update({ pods: 2, ready: 1 }, new Date(100));
  assert.equal(flat.firstScaleUpMs, undefined);
  const summary: HeySummary = {
    totalSeconds: 3.01,
    requestsPerSecond: 120.5,
    averageSeconds: 0.4,
    slowestSeconds: 0.99,
    statusCodes: { '200': 362 },
    errors: {},
    percentiles: { '50': 0.41, '95': 0.9, '99': 0.98 },
  };
  assert.equal(
    formatSummary(summary, flat),
    'hey: 362 responses in 3.0 s (120.5/s): 362 x 200\nlatency: p50 410 ms, p95 900 ms, p99 980 ms, slowest 990 ms\npods: peak 2 (2 ready), 2 at start; no scale-up during the run\n',
  );
  assert.match(
    formatSummary({ ...summary, errors: { 'dial tcp: connection refused': 4 } }, fromZero),
    /errors: 4 x dial tcp: connection refused\npods: peak 1 \(0 ready\), 0 at start; first scale-up 0\.8 s after the load started\n$/,
  );
});

test('change lines stay in fixed columns under their header', () => {
  const header = changeHeader();
  const line = formatChange({ pods: 12, ready: 3, time: new Date(2026, 10, 25, 9, 5, 7), elapsedMs: 12_345 });
  assert.equal(header, 'TIME      ELAPSED   PODS  READY\n');
  assert.equal(line, '09:05:07  12.3s     12    3\n');
});

test("with --via hey connects to the ingress address and sends the URL's host, port included, as Host", () => {
  assert.deepEqual(loadTargetFor('http://simulation.promsnap.example.com/', '/simulate-requests', undefined), {
    url: 'http://simulation.promsnap.example.com/simulate-requests',
    requestUrl: 'http://simulation.promsnap.example.com/simulate-requests',
    host: undefined,
  });
  assert.deepEqual(loadTargetFor('http://simulation.promsnap.example.com', '/', 'http://127.0.0.1:8080'), {
    url: 'http://simulation.promsnap.example.com/',
    requestUrl: 'http://127.0.0.1:8080/',
    host: 'simulation.promsnap.example.com',
  });
  assert.equal(
    loadTargetFor('http://simulation.promsnap.127.0.0.1.sslip.io:31080', '/', 'http://127.0.0.1:8080').host,
    'simulation.promsnap.127.0.0.1.sslip.io:31080',
  );
});
