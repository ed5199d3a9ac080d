// The production event path, proven with Knative Eventing's own code: the platform's PingSource,
// Broker and Trigger (as `kubectl kustomize platform` renders them) are made Ready by Knative's
// controllers on a real API server, and Knative's data plane (PingSource adapter, broker ingress,
// in-memory channel dispatcher, broker filter) delivers to the real snapshot function, which talks to a
// real Prometheus and a real MinIO. Faults are real too: Prometheus and MinIO are stopped and started
// again. What Knative does (attempts, gaps, dead letters) is observed on the cluster proxy, the one way
// into the function, and compared with the Trigger's own delivery policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloudEvent, HTTP } from 'cloudevents';
import { createPingEvent, PING_EVENT_TYPE, pingSource, type DeadLetterRecord, type PingData } from '../../events/src/index.js';
import { rangeKey, tickOf } from '../../archive/src/index.js';
import { deadLetterKey } from '../../functions/snapshot/src/key.js';
import { startMinio, type RunningMinio } from '../tools/minio.js';
import { waitFor } from '../tools/wait.js';
import { startProcess, type ManagedProcess } from '../tools/process.js';
import { startPrometheus, type RunningPrometheus } from '../tools/prometheus.js';
import { startTestApiServer, type TestApiServer } from '../testing/apiserver.js';
import type { ProxiedRequest, ProxyResponse } from '../testing/cluster-proxy.js';
import { startKnativeEventing, waitForReady, type KnativeEventing } from '../testing/knative-eventing.js';
import {
  findGenerated,
  findObject,
  knativeService,
  prometheusSetup,
  renderPlatform,
  retryDelaysMs,
  secretData,
  trigger as triggerSpec,
  type KubeObject,
} from '../manifests/index.js';
import { freePort } from '../tools/ports.js';
import { versions } from '../tools/versions.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const NAMESPACE = 'promsnap';
// Every five seconds (PingSource takes an optional seconds field): a tick within the test, not a minute.
const TEST_SCHEDULE = '*/5 * * * * *';
// The function's range goes with the schedule's period, as the platform's 5m goes with its five-minute
// schedule; a five-second tick settles in a second.
const TEST_RANGE_MS = 5_000;

// A late wake-up on a busy two-core machine is allowed for; an early one never is.
const GAP_EARLY_MS = 50;
const GAP_LATE_MS = 1_500;

test(`the event path on Knative Eventing ${versions.knativeEventing}: PingSource -> Broker -> Trigger -> snapshot, retries and dead letters`, async (t) => {
  const fileStart = Date.now();
  const work = await mkdtemp(path.join(os.tmpdir(), 'promsnap-eventing-path-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  // One ordered teardown: Knative before the API server it watches, everything before the folder.
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => t.diagnostic(`cleanup: ${String(err)}`));
    await rm(work, { recursive: true, force: true });
  });

  // ---- the platform as rendered (a fresh clone gets its credentials created first) ------------------
  const { objects: rendered } = await renderPlatform();
  const pick = (kind: string, name: string, namespace?: string): KubeObject => structuredClone(findObject(rendered, kind, name, namespace));
  const namespace = pick('Namespace', NAMESPACE);
  const ksvc = pick('Service.serving.knative.dev', 'snapshot', NAMESPACE);
  const broker = pick('Broker.eventing.knative.dev', 'default', NAMESPACE);
  const trigger = pick('Trigger.eventing.knative.dev', 'snapshot', NAMESPACE);
  const pingSourceObject = pick('PingSource.sources.knative.dev', 'snapshot-schedule', NAMESPACE);
  const renderedPingData = (pingSourceObject['spec'] as { data?: string }).data;
  // The one change the test makes to the platform's objects: a tick every five seconds (and the
  // function's range and settle time with it, below).
  (pingSourceObject['spec'] as { schedule: string }).schedule = TEST_SCHEDULE;
  const delivery = triggerSpec(rendered, 'snapshot', NAMESPACE).delivery;
  assert.ok(delivery.retry > 0 && delivery.backoffPolicy && delivery.backoffDelay, 'the Trigger retries with a backoff policy and delay');
  const gaps = retryDelaysMs(delivery);
  const windowMs = gaps.reduce((a, b) => a + b, 0);
  t.diagnostic(
    `Trigger delivery: retry ${delivery.retry}, ${delivery.backoffPolicy} from ${delivery.backoffDelay}: waits ${gaps.join(', ')} ms, retry window ${windowMs} ms`,
  );
  // The function's container as Knative would start it, its credentials from the rendered snapshot-s3 Secret.
  const functionSpec = knativeService(rendered, 'snapshot', NAMESPACE);
  assert.deepEqual(functionSpec.env.problems, [], "the snapshot Service's environment resolves");
  const minioRoot = secretData(rendered, findGenerated(rendered, 'Secret', 'minio-root', NAMESPACE).metadata.name, NAMESPACE);

  // ---- real dependencies -------------------------------------------------------------------------
  const functionPort = await freePort();
  const prometheusPort = await freePort();
  const prometheusDir = path.join(work, 'prometheus');
  // The platform's own alert rules (from the rendered ConfigMap), evaluated every second over the
  // function's real metrics.
  const ruleFiles = prometheusSetup(rendered).ruleFiles;
  assert.ok(ruleFiles.length > 0, 'the platform loads alert rules');
  const prometheusConfig = [
    'global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }',
    `rule_files: ${JSON.stringify(ruleFiles.map((r) => r.key))}`,
    'scrape_configs:',
    `  - { job_name: prometheus, static_configs: [{ targets: ['127.0.0.1:${prometheusPort}'] }] }`,
    `  - { job_name: snapshot, static_configs: [{ targets: ['127.0.0.1:${functionPort}'] }] }`,
    '',
  ].join('\n');
  const startOurPrometheus = () =>
    startPrometheus({
      config: prometheusConfig,
      files: Object.fromEntries(ruleFiles.map((r) => [r.key, r.text])),
      dataDir: prometheusDir,
      port: prometheusPort,
    });

  const minioPorts = { port: await freePort(), consolePort: await freePort() };
  const rootCredentials = { accessKeyId: minioRoot['MINIO_ROOT_USER']!, secretAccessKey: minioRoot['MINIO_ROOT_PASSWORD']! };
  const startOurMinio = () => startMinio({ dataDir: path.join(work, 'minio'), credentials: rootCredentials, ...minioPorts });

  const setupStart = Date.now();
  let apiServer: TestApiServer | undefined;
  // Faults replace the running servers; teardown stops whichever is current.
  let prometheus: RunningPrometheus | undefined;
  let minio: RunningMinio | undefined;
  cleanups.push(
    async () => apiServer?.stop(),
    async () => prometheus?.stop(),
    async () => minio?.stop(),
  );
  const started = await Promise.allSettled([
    startTestApiServer().then((s) => (apiServer = s)),
    startOurPrometheus().then((s) => (prometheus = s)),
    startOurMinio().then((s) => (minio = s)),
  ]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  assert.ok(apiServer && prometheus && minio);
  const api: TestApiServer = apiServer;
  const apiReadyMs = Date.now() - setupStart;

  const knativeStart = Date.now();
  const knative: KnativeEventing = await startKnativeEventing(api);
  cleanups.push(() => knative.stop());
  t.diagnostic(
    `Knative Eventing up in ${Date.now() - knativeStart} ms (${knative.network} network; objects ${knative.timings.objectsMs} ms, processes ${knative.timings.processesMs} ms)`,
  );

  // ---- the snapshot function, standing in for its Knative Service ----------------------------------
  const mc = (...args: string[]) => minio!.mc(...args);
  // What the platform's minio-setup Job does: the bucket, the function's own least-privilege user
  // (the credentials its Knative Service gets from the snapshot-s3 Secret) and the bucket policy.
  const functionEnv = functionSpec.env.env;
  await mc('mb', 'local/snapshots');
  await mc('admin', 'user', 'add', 'local', functionEnv['AWS_ACCESS_KEY_ID']!, functionEnv['AWS_SECRET_ACCESS_KEY']!);
  await mc('admin', 'policy', 'create', 'local', 'snapshot-writer', path.join(repoRoot, 'platform/minio/snapshot-policy.json'));
  await mc('admin', 'policy', 'attach', 'local', 'snapshot-writer', '--user', functionEnv['AWS_ACCESS_KEY_ID']!);

  const snapshotFunction = await startSnapshotFunction({
    ...functionEnv,
    PORT: String(functionPort),
    // The addresses the manifest names in-cluster, as this machine serves them.
    PROMETHEUS_URL: prometheus.url,
    S3_ENDPOINT: minio.endpoint,
    SNAPSHOT_RANGE: `${TEST_RANGE_MS / 1000}s`,
    SNAPSHOT_SETTLE: '1s',
    // What Knative Serving sets in every revision's container.
    K_SERVICE: 'snapshot',
    K_REVISION: 'snapshot-00001',
    K_CONFIGURATION: 'snapshot',
  });
  cleanups.push(() => snapshotFunction.stop('SIGTERM', 10_000));

  await api.kubectlWith(
    { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [namespace, ksvc] }) },
    'apply',
    '--server-side',
    '--field-manager=promsnap',
    '-f',
    '-',
  );
  const functionUrl = await knative.serveKnativeService(NAMESPACE, 'snapshot', { port: functionPort });
  const functionHost = new URL(functionUrl).hostname;

  // Every request Knative makes to the function, in order, with its answer.
  const seen: ProxiedRequest[] = [];
  knative.proxy.observe((request) => {
    if (request.host === functionHost) seen.push(request);
  });
  const deliveries = (id: string, route: '/' | '/dead-letters') =>
    seen.filter((r) => r.method === 'POST' && r.path === route && r.headers['ce-id'] === id).sort((a, b) => a.startedAt - b.startedAt);

  let brokerUrl = '';
  await t.test("Knative's own controllers make the platform's Broker, Trigger and PingSource Ready", async () => {
    const applyStart = Date.now();
    await api.kubectlWith(
      { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [broker, trigger, pingSourceObject] }) },
      'apply',
      '--server-side',
      '--field-manager=promsnap',
      '-f',
      '-',
    );
    const readyBroker = await waitForReady(api, 'brokers.eventing.knative.dev', NAMESPACE, 'default');
    const readyTrigger = await waitForReady(api, 'triggers.eventing.knative.dev', NAMESPACE, 'snapshot');
    const readyPing = await waitForReady(api, 'pingsources.sources.knative.dev', NAMESPACE, 'snapshot-schedule');
    t.diagnostic(`Broker, Trigger and PingSource Ready ${Date.now() - applyStart} ms after apply`);
    brokerUrl = (readyBroker['status'] as { address: { url: string } }).address.url;
    const triggerStatus = readyTrigger['status'] as { subscriberUri: string; deadLetterSinkUri: string };
    assert.equal(triggerStatus.subscriberUri, functionUrl, "the Trigger's subscriber resolves to the snapshot Knative Service's address");
    assert.equal(triggerStatus.deadLetterSinkUri, `${functionUrl}/dead-letters`, "the dead-letter sink resolves to the function's /dead-letters route");
    assert.equal((readyPing['status'] as { sinkUri: string }).sinkUri, brokerUrl, 'the PingSource sends to the Broker');
  });

  // A ping as the PingSource adapter sends it, posted to the Broker's ingress (the adapter's own hop).
  const sendPing = (event: CloudEvent<unknown>): Promise<ProxyResponse> => {
    const message = HTTP.binary(event);
    return knative.proxy.send(brokerUrl, {
      method: 'POST',
      headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)])),
      body: message.body as string,
    });
  };
  // A scenario's ping comes from a PingSource of its own, so its export's key (PingSource, range, tick)
  // is its alone even when two scenarios fall within one five-second tick.
  const ping = (data: PingData | undefined = renderedPingData ? (JSON.parse(renderedPingData) as PingData) : undefined, name = 'snapshot-schedule') =>
    createPingEvent({ namespace: NAMESPACE, name, ...(data ? { data } : {}) });
  /** The key of the export a ping of this PingSource at this time writes. */
  const exportKey = (name: string, time: string) =>
    rangeKey({ namespace: NAMESPACE, name, rangeMs: TEST_RANGE_MS, tick: tickOf(Date.parse(time), TEST_RANGE_MS), gzip: false });

  // What the bucket holds, seen through mc as the README says to look.
  const listed = async (incomplete = false) =>
    (await mc('ls', '--recursive', '--json', ...(incomplete ? ['--incomplete'] : []), 'local/snapshots'))
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { key: string }).key);
  const exportsOf = async (name: string) => (await listed()).filter((key) => key.startsWith(`ranges/${NAMESPACE}/${name}/`));
  const readJson = async <T>(key: string) => JSON.parse(await mc('cat', `local/snapshots/${key}`)) as T;

  /** Attempts must be spaced as the Trigger says: the observed waits, for the report. */
  const checkSpacing = (attempts: ProxiedRequest[], label: string): number[] => {
    const observed = attempts.slice(1).map((a, i) => a.startedAt - attempts[i]!.endedAt);
    t.diagnostic(
      `${label}: ${attempts.length} attempts (${attempts.map((a) => a.status).join(', ')}), waits ${observed.join(', ')} ms; policy ${gaps.slice(0, observed.length).join(', ')} ms`,
    );
    for (const [i, wait] of observed.entries()) {
      assert.ok(wait >= gaps[i]! - GAP_EARLY_MS, `${label}: wait ${i + 1} was ${wait} ms, the policy says ${gaps[i]} ms`);
      assert.ok(wait <= gaps[i]! + GAP_LATE_MS, `${label}: wait ${i + 1} was ${wait} ms, the policy says ${gaps[i]} ms`);
    }
    return observed;
  };

  const waitForDeliveries = (id: string, route: '/' | '/dead-letters', count: number, timeoutMs: number, what: string) =>
    waitFor(() => deliveries(id, route).length >= count && deliveries(id, route), { what, timeoutMs, intervalMs: 50 });

  await t.test('a PingSource tick stores exactly one export, of the window its time falls in', async () => {
    // The first tick the adapter sends after the source is Ready (within one period and a little).
    const tickSource = pingSource(NAMESPACE, 'snapshot-schedule');
    const tick = await waitFor(() => seen.find((r) => r.path === '/' && r.headers['ce-source'] === tickSource), {
      what: 'a tick of the PingSource delivered to the function',
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    // The remaining ticks would only crowd the scenarios below; every one of them is its own event anyway.
    await api.kubectl('delete', 'pingsources.sources.knative.dev', 'snapshot-schedule', '-n', NAMESPACE, '--wait=true');
    const id = String(tick.headers['ce-id']);
    const time = String(tick.headers['ce-time']);
    assert.equal(tick.headers['ce-type'], PING_EVENT_TYPE);
    assert.deepEqual(
      deliveries(id, '/').map((r) => r.status),
      [200],
      'delivered once, answered 200',
    );
    const key = exportKey('snapshot-schedule', time);
    assert.ok((await exportsOf('snapshot-schedule')).includes(key), `one object, named after the tick: ${key}`);
    const stored = await readJson<StoredExport>(key);
    assert.equal(stored.id, id);
    assert.equal(stored.source, tickSource);
    assertWindow(stored, time);
    assert.deepEqual(deliveries(id, '/dead-letters'), []);
  });

  /**
   * A dependency down when the ping arrives and back after `backAfterAttempts` failed attempts: the
   * retries the policy allows must carry the ping through to exactly one object for its instant.
   */
  const downThenBack = async (label: string, stopDependency: () => Promise<void>, startDependency: () => Promise<void>, backAfterAttempts: number) => {
    await stopDependency();
    const source = `scenario-${label.toLowerCase()}-back`;
    const event = ping(undefined, source);
    const accepted = sendPing(event);
    try {
      await waitForDeliveries(event.id, '/', backAfterAttempts, windowMs, `${backAfterAttempts} attempts while ${label} is down`);
    } finally {
      await startDependency();
    }
    const response = await accepted;
    assert.equal(response.status, 202, `the broker ingress accepted the ping: ${response.body}`);
    const attempts = deliveries(event.id, '/');
    assert.ok(attempts.length <= delivery.retry + 1, `at most ${delivery.retry + 1} attempts, saw ${attempts.length}`);
    assert.equal(attempts.at(-1)!.status, 200, 'the last attempt succeeded');
    for (const failed of attempts.slice(0, -1)) assert.equal(failed.status, 503, `${label} down is answered 503 (retryable)`);
    assert.ok(attempts.length > backAfterAttempts, 'the ping was retried after the dependency came back');
    checkSpacing(attempts, label);
    assert.deepEqual(await exportsOf(source), [exportKey(source, event.time!)], 'exactly one object, for the same window');
    // The window of the ping's time, not of the attempt that finally succeeded seconds later.
    assertWindow(await readJson<StoredExport>(exportKey(source, event.time!)), event.time!);
    assert.deepEqual(deliveries(event.id, '/dead-letters'), [], 'nothing dead-lettered');
    assert.deepEqual(await listed(true), [], 'no multipart upload left behind');
  };

  /**
   * A dependency down for longer than the retry window: every attempt fails, nothing is stored, and
   * the event ends in the dead-letter sink with Knative's error attributes.
   */
  const downTooLong = async (
    label: string,
    stopDependency: () => Promise<void>,
    startDependency: () => Promise<void>,
    startAfter: 'all-attempts' | 'first-dead-letter',
  ) => {
    await stopDependency();
    const source = `scenario-${label.toLowerCase()}-gone`;
    const event = ping(undefined, source);
    const accepted = sendPing(event);
    try {
      await waitForDeliveries(event.id, '/', delivery.retry + 1, windowMs + 10_000, `all ${delivery.retry + 1} attempts while ${label} is down`);
      if (startAfter === 'first-dead-letter') {
        await waitForDeliveries(event.id, '/dead-letters', 1, 10_000, `the first dead-letter delivery while ${label} is down`);
      }
    } finally {
      await startDependency();
    }
    const response = await accepted;
    assert.equal(response.status, 202, `the broker ingress accepted the ping: ${response.body}`);
    const attempts = deliveries(event.id, '/');
    assert.equal(attempts.length, delivery.retry + 1, `the Trigger's ${delivery.retry} retries, then no more`);
    assert.ok(
      attempts.every((a) => a.status === 503),
      `every attempt answered 503: ${attempts.map((a) => a.status).join(', ')}`,
    );
    checkSpacing(attempts, label);

    const deadLetters = deliveries(event.id, '/dead-letters');
    assert.equal(deadLetters.at(-1)?.status, 202, 'the dead-letter sink took the event');
    assert.ok(deadLetters[0]!.startedAt >= attempts.at(-1)!.endedAt, 'dead-lettered only after the last attempt');
    const headers = deadLetters.at(-1)!.headers;
    assert.equal(headers['ce-knativeerrorcode'], '503');
    assert.equal(headers['ce-knativeerrordest'], functionUrl, 'knativeerrordest names the subscriber');
    assert.match(String(headers['ce-knativeerrordata']), /^[A-Za-z0-9+/=]+$/, 'knativeerrordata carries the last answer (base64)');
    if (deadLetters.length > 1) checkSpacing(deadLetters, `${label}, dead-letter sink`);

    assert.deepEqual(await exportsOf(source), [], 'no export object');
    assert.deepEqual(await listed(true), [], 'no partial (multipart) upload left behind');
    const record = await readJson<DeadLetterRecord>(deadLetterKey(event.time!, event.id));
    assert.equal(record.event['id'], event.id);
    assert.equal(record.event['time'], event.time);
    assert.equal(record.error.code, 503);
    assert.equal(record.error.destination, functionUrl);
    assert.match(record.error.body ?? '', /"retryable":true/, "the function's own 503 body, kept");
    return { attempts, deadLetters };
  };

  const stopPrometheus = async () => {
    await prometheus?.stop();
    prometheus = undefined;
  };
  const startPrometheusAgain = async () => {
    prometheus ??= await startOurPrometheus();
  };
  const stopMinio = async () => {
    await minio?.stop();
    minio = undefined;
  };
  const startMinioAgain = async () => {
    minio ??= await startOurMinio();
  };

  await t.test('Prometheus down at the tick and back within the retry window: retried as the Trigger says, one export for the window of its time', async () => {
    await downThenBack('Prometheus', stopPrometheus, startPrometheusAgain, 2);
  });

  await t.test('Prometheus down for longer than the retry window: no export, no partial upload, the event kept by the dead-letter sink', async () => {
    await downTooLong('Prometheus', stopPrometheus, startPrometheusAgain, 'all-attempts');
  });

  await t.test('MinIO unreachable at the tick and back within the retry window: one export for the window of its time', async () => {
    await downThenBack('MinIO', stopMinio, startMinioAgain, 2);
  });

  await t.test("MinIO unreachable for longer than the retry window: no export, the event kept once MinIO is back within the sink's own retries", async () => {
    // The dead-letter sink writes to the same MinIO, so Knative's retries of the sink (the same policy)
    // are what keep the event: MinIO comes back after the first dead-letter attempt has failed.
    const { deadLetters } = await downTooLong('MinIO', stopMinio, startMinioAgain, 'first-dead-letter');
    assert.equal(deadLetters[0]!.status, 503, 'the first dead-letter delivery met MinIO down');
  });

  await t.test('events the function rejects (4xx) go to the dead-letter sink at once, without retries', async (t) => {
    const cases: Array<{ label: string; event: CloudEvent<unknown>; status: number }> = [
      // The function takes no queries from events (the manifest allows none): no retry can change that.
      { label: 'a ping naming a query the function does not take from events (403)', event: ping({ queries: ['sum(('] }), status: 403 },
      // An instant that has not come: refused, so it can never stand as the newest snapshot.
      {
        label: 'a ping from the future (422)',
        event: createPingEvent({ namespace: NAMESPACE, name: 'snapshot-schedule', time: new Date(Date.now() + 3_600_000) }),
        status: 422,
      },
      // Not an acceptable ping: an empty query list breaks the ping data schema.
      {
        label: 'ping data the function cannot accept (400)',
        event: new CloudEvent(
          {
            specversion: '1.0',
            type: PING_EVENT_TYPE,
            source: pingSource(NAMESPACE, 'snapshot-schedule'),
            id: randomUUID(),
            time: new Date().toISOString(),
            datacontenttype: 'application/json',
            data: { queries: [] },
          },
          false,
        ),
        status: 400,
      },
    ];
    const exportsBefore = (await listed()).filter((key) => !key.startsWith('dead-letters/'));
    const responses = await Promise.all(cases.map((c) => sendPing(c.event)));
    for (const [i, c] of cases.entries()) {
      await t.test(c.label, async () => {
        assert.equal(responses[i]!.status, 202, responses[i]!.body);
        const attempts = deliveries(c.event.id, '/');
        assert.deepEqual(
          attempts.map((a) => a.status),
          [c.status],
          'one attempt, not retried',
        );
        const deadLetters = deliveries(c.event.id, '/dead-letters');
        assert.deepEqual(
          deadLetters.map((a) => a.status),
          [202],
          'dead-lettered once',
        );
        assert.ok(
          deadLetters[0]!.startedAt - attempts[0]!.endedAt < gaps[0]!,
          `dead-lettered at once, not after a backoff (${deadLetters[0]!.startedAt - attempts[0]!.endedAt} ms)`,
        );
        assert.equal(deadLetters[0]!.headers['ce-knativeerrorcode'], String(c.status));
        const record = await readJson<DeadLetterRecord>(deadLetterKey(c.event.time!, c.event.id));
        assert.equal(record.error.code, c.status);
        assert.match(record.error.body ?? '', /"retryable":false/);
        assert.deepEqual(
          (await listed()).filter((key) => !key.startsWith('dead-letters/')),
          exportsBefore,
          'nothing stored for it',
        );
      });
    }
  });

  /** The platform's alert `name` once Prometheus, evaluating its rules over the function's metrics, fires it. */
  const firingAlert = (name: string) =>
    waitFor(
      async () => {
        const body = (await (await fetch(`${prometheus!.url}/api/v1/alerts`)).json()) as {
          data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
        };
        return body.data.alerts.find((a) => a.labels['alertname'] === name && a.state === 'firing');
      },
      { what: `the ${name} alert to fire`, timeoutMs: 30_000, intervalMs: 500 },
    );

  await t.test("every dead letter is counted, and the platform's SnapshotDeadLetters alert fires", async () => {
    const stored = (await listed()).filter((key) => key.startsWith('dead-letters/'));
    assert.equal(stored.length, 5, `dead letters stored: ${stored.join(', ')}`);
    const metrics = await (await fetch(`http://127.0.0.1:${functionPort}/metrics`)).text();
    assert.match(metrics, /^snapshot_dead_letters_total(\{[^}]*\})? 5$/m);
    const firing = await firingAlert('SnapshotDeadLetters');
    assert.equal(firing.labels['severity'], 'critical');
  });

  await t.test("the sink's writes that met MinIO down are counted as storage_unavailable, and SnapshotDeadLettersNotStored fires", async () => {
    // From the MinIO scenario above: the sink answered 503 while MinIO was down, before a retry kept the letter.
    const failedWrites = seen.filter((r) => r.method === 'POST' && r.path === '/dead-letters' && r.status === 503).length;
    assert.ok(failedWrites >= 1, 'the dead-letter sink met MinIO down');
    const metrics = await (await fetch(`http://127.0.0.1:${functionPort}/metrics`)).text();
    const counted = (reason: string) =>
      Number(new RegExp(`^snapshot_dead_letter_failures_total\\{(?=[^}]*reason="${reason}")[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    assert.equal(counted('storage_unavailable'), failedWrites, 'each failed write counted once');
    for (const reason of ['invalid_event', 'too_large', 'internal']) assert.equal(counted(reason), 0, reason);
    const firing = await firingAlert('SnapshotDeadLettersNotStored');
    assert.equal(firing.labels['severity'], 'critical');
  });

  await t.test('the harness fails with a clear message, not a hang, when a Knative process does not come up', async (t) => {
    // Stand-in binaries: the dispatcher fails as it would with its port taken, the rest idle silently.
    const fakeBin = path.join(work, 'fake-knative-bin');
    await mkdir(fakeBin);
    const idle = 'setInterval(() => {}, 1000);';
    const writeFakes = async (dispatcher: string) => {
      for (const name of Object.keys(knative.processes)) {
        await writeFile(path.join(fakeBin, name), `#!${process.execPath}\n${name === 'channel_dispatcher' ? dispatcher : idle}\n`, { mode: 0o755 });
      }
    };
    const noneLeft = () => assert.deepEqual(processesRunning(fakeBin), [], 'processes of the failed start left running');

    await t.test('a process that exits is named, with what it printed', async () => {
      await writeFakes("console.error('listen tcp :8080: bind: address already in use'); process.exit(3);");
      const start = Date.now();
      await assert.rejects(startKnativeEventing(api, { binDir: fakeBin, startTimeoutMs: 30_000 }), /channel_dispatcher exited \(3\)[^]*address already in use/);
      assert.ok(Date.now() - start < 20_000, `failed after ${Date.now() - start} ms, not at once`);
      noneLeft();
    });
    await t.test('a process that never answers its probe fails at the timeout', async () => {
      await writeFakes(idle);
      await assert.rejects(startKnativeEventing(api, { binDir: fakeBin, startTimeoutMs: 1_500 }), /did not answer \/(healthz|readiness) .*within 1500 ms/);
      noneLeft();
    });
  });

  await t.test('stopping leaves no Knative process running', async () => {
    const stopStart = Date.now();
    await knative.stop();
    t.diagnostic(`Knative Eventing stopped in ${Date.now() - stopStart} ms`);
    for (const [name, child] of Object.entries(knative.processes)) {
      assert.notEqual(child.child.exitCode ?? child.child.signalCode, null, `${name} still running`);
      assert.throws(() => process.kill(-child.pid, 0), `${name}'s process group is gone`);
    }
  });

  t.diagnostic(`file: ${Math.round((Date.now() - fileStart) / 1000)} s; API server ${apiReadyMs} ms (${api.timings.crdsMs} ms of it CRDs)`);
});

/** Pids whose command line mentions text (Linux /proc), to prove a failed start left nothing behind. */
function processesRunning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.trim()}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

interface StoredExport {
  kind: string;
  id: string;
  source: string;
  time: string;
  start: string;
  end: string;
  series: number;
  samples: number;
  results: Array<{ query: string; response: { status: string; data: { result: Array<{ values: Array<[number, string]> }> } } }>;
}

/**
 * The export holds Prometheus's raw samples of the window the event's time falls in: it ends at the
 * tick (the time floored to the range), and every sample is inside it. Knative's adapter stamps
 * nanoseconds, Prometheus keeps milliseconds, so times are compared to the millisecond.
 */
function assertWindow(stored: StoredExport, eventTime: string): void {
  const tick = tickOf(Date.parse(eventTime), TEST_RANGE_MS);
  assert.equal(stored.kind, 'promsnap.range.v1');
  assert.equal(Date.parse(stored.time), Date.parse(eventTime), `the export was asked for at ${eventTime}, its document says ${stored.time}`);
  assert.equal(Date.parse(stored.end), tick, `the window ends at the tick ${new Date(tick).toISOString()}`);
  const start = Date.parse(stored.start);
  assert.ok(start <= tick - TEST_RANGE_MS, 'the window holds at least its own range');
  const series = stored.results.flatMap((r) => r.response.data.result);
  const points = series.flatMap((s) => s.values.map(([t]) => Math.round(t * 1000)));
  assert.ok(
    points.length > 0 && stored.series === series.length && stored.samples === points.length,
    `Prometheus had samples in the window (${points.length})`,
  );
  for (const t of points) assert.ok(t > start && t <= tick, `a sample at ${t}, outside (${start}, ${tick}]`);
}

/** The snapshot function as its Knative Service would run it, with the container's environment. */
async function startSnapshotFunction(env: Record<string, string>): Promise<ManagedProcess> {
  return startProcess({
    name: 'snapshot',
    command: process.execPath,
    args: ['--import', 'tsx', 'functions/snapshot/src/server.ts'],
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? os.homedir(), ...env },
    readyUrl: `http://127.0.0.1:${env['PORT']}/readyz`,
    readyTimeoutMs: 30_000,
  });
}
