import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../runtime/src/env.js';
import { defaults, loadConfig } from '../src/config.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
}

test('an empty environment gives the documented defaults', () => {
  assert.deepEqual(loadConfig({}), {
    port: 8080,
    latency: { minMs: defaults.latencyMinMs, maxMs: defaults.latencyMaxMs },
    labels: {},
    logLevel: 'info',
    shutdownGraceMs: defaults.shutdownGraceMs,
    service: undefined,
    revision: undefined,
  });
});

test('every variable is read, including the names Knative sets', () => {
  const config = loadConfig({
    PORT: '9000',
    SIMULATION_LATENCY_MIN_MS: '5',
    SIMULATION_LATENCY_MAX_MS: '50',
    SIMULATION_LABELS: 'team=payments,env=dev',
    LOG_LEVEL: 'debug',
    SHUTDOWN_GRACE_MS: '3000',
    K_SERVICE: 'simulation',
    K_REVISION: 'simulation-00001',
  });
  assert.deepEqual(config, {
    port: 9000,
    latency: { minMs: 5, maxMs: 50 },
    labels: { team: 'payments', env: 'dev' },
    logLevel: 'debug',
    shutdownGraceMs: 3000,
    service: 'simulation',
    revision: 'simulation-00001',
  });
});

test('every bad variable is reported at once, each by name', () => {
  const problems = problemsOf({
    PORT: 'eighty',
    SIMULATION_LATENCY_MIN_MS: '-1',
    SIMULATION_LATENCY_MAX_MS: '1.5',
    LOG_LEVEL: 'verbose',
    SHUTDOWN_GRACE_MS: '99999999',
  });
  assert.equal(problems.length, 5, problems.join('\n'));
  for (const [i, name] of ['PORT', 'SIMULATION_LATENCY_MIN_MS', 'SIMULATION_LATENCY_MAX_MS', 'LOG_LEVEL', 'SHUTDOWN_GRACE_MS'].entries()) {
    assert.ok(problems[i]!.startsWith(`${name}=`), problems[i]);
  }
  assert.match(problemsOf({ PORT: '70000' })[0]!, /^PORT="70000" must be a whole number from 1 to 65535$/);
});

test('a latency range whose minimum exceeds its maximum is refused, naming both variables', () => {
  assert.deepEqual(problemsOf({ SIMULATION_LATENCY_MIN_MS: '300', SIMULATION_LATENCY_MAX_MS: '200' }), [
    'SIMULATION_LATENCY_MIN_MS (300) must not exceed SIMULATION_LATENCY_MAX_MS (200)',
  ]);
  assert.deepEqual(loadConfig({ SIMULATION_LATENCY_MIN_MS: '200', SIMULATION_LATENCY_MAX_MS: '200' }).latency, {
    minMs: 200,
    maxMs: 200,
  });
});

test('a simulated latency the shutdown grace could not wait for is refused', () => {
  assert.deepEqual(problemsOf({ SIMULATION_LATENCY_MAX_MS: '5000', SHUTDOWN_GRACE_MS: '5000' }), [
    'SIMULATION_LATENCY_MAX_MS (5000) must be below SHUTDOWN_GRACE_MS (5000) so in-flight requests finish during a shutdown',
  ]);
});

test('SIMULATION_LABELS: name=value pairs, spaces and a trailing comma allowed, a value may hold "="', () => {
  assert.deepEqual(loadConfig({ SIMULATION_LABELS: ' team = payments , env=dev, selector=a=b ,' }).labels, {
    team: 'payments',
    env: 'dev',
    selector: 'a=b',
  });
});

test('SIMULATION_LABELS: every bad entry is reported, each naming the variable', () => {
  assert.deepEqual(problemsOf({ SIMULATION_LABELS: 'team,1team=a,team-b=c,__meta=x,app=other,job=j,route=/x,type=t,env=,env=dev,env=prod' }), [
    'SIMULATION_LABELS: "team" must be name=value',
    'SIMULATION_LABELS: label name "1team" must match [a-zA-Z_][a-zA-Z0-9_]*',
    'SIMULATION_LABELS: label name "team-b" must match [a-zA-Z_][a-zA-Z0-9_]*',
    'SIMULATION_LABELS: label name "__meta" starts with "__", which Prometheus reserves for itself',
    'SIMULATION_LABELS: label "app" cannot be set: it is always "simulation"',
    'SIMULATION_LABELS: label "job" cannot be set: Prometheus sets it on every target',
    'SIMULATION_LABELS: label "route" cannot be set: the request metrics already use it',
    'SIMULATION_LABELS: label "type" cannot be set: Node.js\'s default metrics already use it',
    'SIMULATION_LABELS: label "env" has an empty value (Prometheus reads that as no label)',
    'SIMULATION_LABELS: label "env" is given twice',
  ]);
  assert.deepEqual(problemsOf({ SIMULATION_LABELS: 'app=simulation' }), ['SIMULATION_LABELS: label "app" cannot be set: it is always "simulation"']);
});
