// `npm start` end to end, started as a user starts it (`node --import tsx platform/local/main.ts`, what
// `npm start` runs) with a fast schedule, once for the file: what it prints; the first range export in
// MinIO; `kubectl get ksvc -A` and `npm run cluster -- status` against its KUBECONFIG; MinIO's setup Job
// and the limits of the snapshot function's credentials; requests through the simulation's ksvc URL in a
// later export, `npm run load` scaling the simulation up and back with series from every pod; then
// Ctrl-C (an in-flight export completes first, nothing left behind) and a second start on the same data
// dir that keeps the bucket and the TSDB.
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { RANGE_PREFIX, parseRangeKey, rangeKey } from '../../../archive/src/keys.js';
import { deadLetterKey, snapshotKey } from '../../../functions/snapshot/src/key.js';
import { createS3Client, createStore } from '../../../functions/snapshot/src/store.js';
import { clusterMemory } from '../../localcluster/index.js';
import { findObject, parseObjects, podTemplates, resolveEnv } from '../../manifests/index.js';
import { runCommand } from '../../tools/command.js';
import { findTool } from '../../tools/find.js';
import { kustomize } from '../../tools/kubectl.js';
import { hostLinks, sandboxLeftovers, type SandboxTraces } from '../../tools/sandbox.js';
import { sleep, waitFor } from '../../tools/wait.js';
import type { LocalState } from '../start.js';
import { alive, commandOf, descendants, repoRoot, startRunner, type ProcessId, type RunnerProcess } from './support.js';

const periodMs = 10_000;
const rangeFolder = `${RANGE_PREFIX}promsnap/snapshot-schedule/10s/`;

interface Series {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}
interface RangeExport {
  kind: string;
  range: string;
  start: string;
  end: string;
  results: Array<{ query: string; response: { status: string; data: { result: Series[] } }; series: number; samples: number }>;
  series: number;
  samples: number;
}

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;

async function s3Error(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'allowed';
  } catch (err) {
    if (err instanceof S3ServiceException) return err.name;
    throw err;
  }
}

/** GET through the ingress with a ksvc's Host, as `curl -H Host:` does (fetch cannot set Host). */
async function getVia(ingress: string, host: string, pathname: string): Promise<number> {
  return (await getBodyVia(ingress, host, pathname)).status;
}

function getBodyVia(ingress: string, host: string, pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${ingress}${pathname}`, { headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** A copy of the repository's tracked files as a git repository of its own (Skaffold tags by commit), sharing node_modules. */
async function repoCopy(dir: string): Promise<string> {
  const { stdout } = await runCommand('git', ['-C', repoRoot, 'ls-files', '-z']);
  const files = stdout.split('\0').filter((f) => f && existsSync(path.join(repoRoot, f)));
  await mkdir(dir, { recursive: true });
  for (const file of files) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await copyFile(path.join(repoRoot, file), path.join(dir, file));
  }
  await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const git = (...args: string[]) => runCommand('git', ['-C', dir, '-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args]);
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-qm', 'copy');
  return dir;
}

async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function readText(client: S3Client, bucket: string, key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString();
}

/** Every series of one name in a range export, across its results. */
function seriesNamed(exported: RangeExport, name: string): Series[] {
  return exported.results.flatMap((r) => r.response.data.result).filter((s) => s.metric['__name__'] === name);
}

interface Started {
  runner: RunnerProcess;
  startedAt: number;
  lines: {
    kubeconfig: string;
    simulation: string;
    ingress: string;
    heyHost: string;
    mc: { endpoint: string; user: string; password: string };
    prometheus: string;
  };
  state: LocalState & { sandbox: SandboxTraces };
}

async function start(dataDir: string): Promise<Started> {
  const startedAt = Date.now();
  const runner = startRunner(['--data-dir', dataDir, '--ping-every', '10s']);
  await runner.waitForLine(/^ready in /, 400_000);
  const kubeconfig = (await runner.waitForLine(/^\s+export KUBECONFIG=(\S+)$/, 1_000))[1]!;
  const [, simulation, ingress] = await runner.waitForLine(/^Simulation\s+(http:\/\/\S+)\s+\(ksvc, through the ingress at (http:\/\/\S+)\)$/, 1_000);
  const [, heyHost, heyIngress] = await runner.waitForLine(/^\s+hey -z 30s -c 50 -host (\S+) (http:\/\/\S+)\/simulate-requests$/, 1_000);
  assert.equal(heyIngress, ingress);
  const [, endpoint, user, password] = await runner.waitForLine(/^MinIO client\s+mc alias set promsnap (\S+) (\S+) (\S+)$/, 1_000);
  const prometheus = (await runner.waitForLine(/^Prometheus API\s+(http:\/\/127\.0\.0\.1:\d+)\/api\/v1\/query\?query=up$/, 1_000))[1]!;
  // Prometheus, MinIO and the rest go in as soon as the node runs pods, not only with Knative's objects.
  await runner.waitForLine(/^\s+kubectl apply: the \d+ objects that need no Knative applied after /, 1_000);
  const state = JSON.parse(await readFile(path.join(dataDir, 'local.json'), 'utf8')) as LocalState & { sandbox: SandboxTraces };
  return {
    runner,
    startedAt,
    lines: {
      kubeconfig,
      simulation: simulation!,
      ingress: ingress!,
      heyHost: heyHost!,
      mc: { endpoint: endpoint!, user: user!, password: password! },
      prometheus,
    },
    state,
  };
}

/** SIGINT, then the exit; fails if it takes more than two minutes. */
async function interrupt(runner: RunnerProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  runner.child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([runner.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 120_000)))]);
  clearTimeout(timer);
  assert.notEqual(exit, 'timeout', `npm start still running 120 s after SIGINT:\n${runner.output().slice(-3000)}`);
  return exit as { code: number | null; signal: NodeJS.Signals | null };
}

describe('npm start: the platform on the local cluster', { timeout: 900_000 }, () => {
  let dataDir: string;
  let first: Started;
  let second: Started | undefined;
  let client: S3Client;
  let bucket: string;
  let linksBefore: string[];
  const env = () => ({ ...process.env, KUBECONFIG: first.lines.kubeconfig });
  /** Simulation pods seen, with when each was first and last seen Ready. */
  const readyPods = new Map<string, { from: number; to: number }>();
  let requestsDoneAt = 0;
  /** An instant Prometheus had the requests' series at (the end of the export that holds them). */
  let requestsSeenAt = 0;
  let scaleBack: Promise<Array<{ at: number; pods: number; ready: number }>> | undefined;

  before(async () => {
    linksBefore = (await hostLinks()).map((l) => `${l.name} (${l.kind})`);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-start-'));
    first = await start(dataDir);
    bucket = 'snapshots';
    client = createS3Client({
      endpoint: first.lines.mc.endpoint,
      region: 'us-east-1',
      accessKeyId: first.lines.mc.user,
      secretAccessKey: first.lines.mc.password,
    });
  });

  after(async () => {
    client?.destroy();
    for (const run of [first, second]) if (run && run.runner.child.exitCode === null) await interrupt(run.runner).catch(() => run.runner.child.kill('SIGKILL'));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('prints KUBECONFIG, the ksvc URL with its hey line and the mc alias line, and stores a first range export', async (t) => {
    assert.equal(first.lines.simulation, 'http://simulation.promsnap.example.com');
    assert.equal(first.lines.heyHost, 'simulation.promsnap.example.com');
    assert.equal(first.state.kubeconfig, first.lines.kubeconfig);
    const stored = await first.runner.waitForLine(
      /^snapshot stored {2}snapshots\/(ranges\/promsnap\/snapshot-schedule\/10s\/\d{4}\/\d{2}\/\d{2}\/\d{6}Z\.json) {2}\d+ bytes {2}(\d+) series {2}(\d+) samples from (\d\d:\d\d:\d\d) to (\d\d:\d\d:\d\d)/,
      180_000,
    );
    assert.ok(Number(stored[2]) > 0 && Number(stored[3]) > 0, stored[0]);
    assert.equal(Date.parse(`1970-01-01T${stored[5]}Z`) - Date.parse(`1970-01-01T${stored[4]}Z`), periodMs, 'the window is one ping period');
    const firstLine = (await first.runner.waitForLine(/^\s+\(first snapshot stored [\d.]+ s after npm start began\)$/, 5_000))[0];
    t.diagnostic(`start-up: ${first.runner.lines.find((l) => /^ready in /.test(l))}; ${firstLine.trim()}`);
    t.diagnostic(
      `memory at rest: ${mb(clusterMemory({ traces: first.state.sandbox }).rssBytes)} (${clusterMemory({ traces: first.state.sandbox })
        .byCommand.slice(0, 6)
        .map((c) => `${c.command} ${mb(c.rssBytes)}`)
        .join(', ')})`,
    );
  });

  it('kubectl get ksvc -A lists both Knative Services Ready with their URLs', async () => {
    const { stdout } = await runCommand(findTool('kubectl'), ['get', 'ksvc', '-A', '-o', 'json'], { env: env() });
    const items = (
      JSON.parse(stdout) as {
        items: Array<{ metadata: { name: string; namespace: string }; status?: { url?: string; conditions?: Array<{ type: string; status: string }> } }>;
      }
    ).items;
    const rows = Object.fromEntries(
      items.map((i) => [
        `${i.metadata.namespace}/${i.metadata.name}`,
        { url: i.status?.url, ready: i.status?.conditions?.find((c) => c.type === 'Ready')?.status },
      ]),
    );
    assert.deepEqual(rows, {
      'promsnap/simulation': { url: 'http://simulation.promsnap.example.com', ready: 'True' },
      'promsnap/snapshot': { url: 'http://snapshot.promsnap.svc.cluster.local', ready: 'True' },
    });
    const revisions = await runCommand(findTool('kubectl'), ['get', 'revisions', '-n', 'promsnap', '-o', 'name'], { env: env() });
    assert.deepEqual(
      revisions.stdout.trim().split('\n').sort(),
      ['revision.serving.knative.dev/simulation-00001', 'revision.serving.knative.dev/snapshot-00001'],
      'one apply, one Revision each',
    );
    const table = await runCommand(findTool('kubectl'), ['get', 'ksvc', '-A'], { env: env() });
    assert.match(table.stdout, /^promsnap\s+simulation\s+http:\/\/simulation\.promsnap\.example\.com\s+\S+\s+\S+\s+True/m);
  });

  it('npm run cluster -- status exits 0 against its KUBECONFIG', async (t) => {
    const status = await runCommand(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'platform/cluster/main.ts'), 'status'], {
      cwd: repoRoot,
      env: env(),
      allowFailure: true,
    });
    t.diagnostic(status.stdout.trim().split('\n').slice(0, 3).join(' | '));
    assert.equal(status.code, 0, `${status.stdout}\n${status.stderr}`);
  });

  it("MinIO's setup Job ran on the cluster, and the snapshot function's credentials do what it does and nothing else", async (t) => {
    const { stdout } = await runCommand(findTool('kubectl'), ['get', 'job', 'minio-setup', '-n', 'promsnap', '-o', 'json'], { env: env() });
    const job = JSON.parse(stdout) as { status?: { succeeded?: number; conditions?: Array<{ type: string; status: string }> } };
    assert.equal(job.status?.conditions?.find((c) => c.type === 'Complete')?.status, 'True', stdout);

    // The root user as the MinIO Deployment gets it, from what was applied (the overlay in the data dir).
    const objects = parseObjects(await kustomize(path.join(dataDir, 'overlay')), 'overlay');
    const minio = podTemplates([findObject(objects, 'Deployment', 'minio', 'promsnap')])[0]!;
    const serverEnv = resolveEnv(objects, 'promsnap', minio.spec.containers[0]!).env;
    const root = { accessKeyId: serverEnv['MINIO_ROOT_USER']!, secretAccessKey: serverEnv['MINIO_ROOT_PASSWORD']! };
    assert.notEqual(first.lines.mc.user, root.accessKeyId, 'the printed mc line is the function user, not root');
    const rootClient = createS3Client({ endpoint: first.lines.mc.endpoint, region: 'us-east-1', ...root });
    t.after(() => rootClient.destroy());
    const store = createStore({ client, bucket });
    // An instant far from now, so nothing the running function writes is touched.
    const time = '2020-11-25T12:05:00.000Z';

    const key = snapshotKey(time, 'test-1', false);
    assert.equal((await store.writeOnce(key, Readable.from([Buffer.from('{"status":"success"}')]), { contentType: 'application/json' })).created, true);
    assert.equal(
      (await store.writeOnce(key, Readable.from([Buffer.from('{}')]), { contentType: 'application/json' })).created,
      false,
      'an existing snapshot is kept',
    );
    assert.equal(await store.tail(key, 8, false), 'uccess"}');
    const range = rangeKey({ namespace: 'promsnap', name: 'test-schedule', rangeMs: 300_000, tick: Date.parse(time), gzip: false });
    assert.equal((await store.writeOnce(range, Readable.from([Buffer.from('{"series":0,"samples":0}')]), { contentType: 'application/json' })).created, true);
    assert.ok((await listKeys(client, bucket, '')).includes(range), 'the user lists the bucket');
    assert.equal((await store.writeOnce(deadLetterKey(time, 'test-2'), Readable.from([Buffer.from('{}')]), { contentType: 'application/json' })).created, true);

    // A multipart upload that breaks off is aborted by the user itself.
    const broken = snapshotKey(time, 'test-broken', false);
    const chunk = Buffer.alloc(1024 * 1024, 'y');
    function* breaking() {
      for (let i = 0; i < 7; i++) yield chunk;
      throw new Error('Prometheus went away');
    }
    await assert.rejects(store.writeOnce(broken, Readable.from(breaking()), { contentType: 'application/json' }), /Prometheus went away/);
    assert.equal(await store.head(broken), undefined);
    assert.deepEqual((await rootClient.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], [], 'no multipart upload left behind');

    const put = (Key: string) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: '{}' }));
    const denied = {
      'delete a snapshot': await s3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))),
      'write outside the date, range and dead-letter prefixes': await s3Error(put('other/x.json')),
      'write at the bucket root': await s3Error(put('x.json')),
      'create a bucket': await s3Error(client.send(new CreateBucketCommand({ Bucket: 'elsewhere' }))),
      'change the bucket policy': await s3Error(
        client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [] }) })),
      ),
    };
    assert.deepEqual(
      Object.entries(denied).filter(([, outcome]) => outcome !== 'AccessDenied'),
      [],
      'each of these must be AccessDenied',
    );
    assert.deepEqual(
      ((await client.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name),
      [bucket],
      'no sight of other buckets',
    );
    // The same requests as root succeed, so the denials above are the policy's, not a broken request.
    assert.equal(await s3Error(rootClient.send(new PutObjectCommand({ Bucket: bucket, Key: 'other/x.json', Body: '{}' }))), 'allowed');
    assert.equal(await s3Error(rootClient.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'other/x.json' }))), 'allowed');

    const userUrl = new URL(first.lines.mc.endpoint);
    userUrl.username = first.lines.mc.user;
    userUrl.password = first.lines.mc.password;
    const admin = await runCommand(findTool('mc'), ['--no-color', '--config-dir', path.join(dataDir, 'mc-test'), 'admin', 'user', 'list', 'fn'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: dataDir, MC_HOST_fn: userUrl.toString().replace(/\/$/, '') },
      allowFailure: true,
    });
    assert.match(admin.code === 0 ? 'allowed' : admin.stderr, /Access Denied|not authorized|AccessDenied/i, 'the user cannot administer MinIO');
  });

  it("requests sent through the simulation's ksvc URL show up in a later range export, scraped with the manifests' labels", async (t) => {
    const host = new URL(first.lines.simulation).host;
    const requests = 25;
    for (let i = 0; i < requests; i++) assert.equal(await getVia(first.lines.ingress, host, '/simulate-requests'), 200);
    assert.equal(await getVia(first.lines.ingress, host, '/no-such-route'), 404);
    requestsDoneAt = Date.now();
    const seen = new Set<string>();
    const found = await waitFor(
      async () => {
        for (const key of (await listKeys(client, bucket, rangeFolder)).filter((k) => !seen.has(k))) {
          seen.add(key);
          // Only an export whose window ends after the requests can hold them all.
          if ((parseRangeKey(key)?.tick ?? 0) < requestsDoneAt) continue;
          const exported = JSON.parse(await readText(client, bucket, key)) as RangeExport;
          const counted = seriesNamed(exported, 'simulation_app_requests_total').filter(
            (s) => s.metric['route'] === '/simulate-requests' && s.metric['statusCode'] === '200',
          );
          const total = counted.reduce((sum, s) => sum + Number(s.values.at(-1)?.[1] ?? 0), 0);
          if (total >= requests) return { key, exported, counted };
        }
        return undefined;
      },
      { timeoutMs: 120_000, intervalMs: 2_000, what: `a range export counting the ${requests} requests` },
    );
    t.diagnostic(`${found.key}: the requests, ${Math.round((Date.now() - requestsDoneAt) / 1000)} s after them`);
    requestsSeenAt = Date.parse(found.exported.end);
    assert.equal(found.exported.kind, 'promsnap.range.v1');
    assert.equal(found.exported.range, '10s', 'the range follows --ping-every');
    assert.equal(Date.parse(found.exported.end) - Date.parse(found.exported.start), periodMs);
    const [series] = found.counted;
    assert.equal(series!.metric['app'], 'simulation', "the application's own default label");
    assert.equal(series!.metric['job'], 'kubernetes-pods', "scraped by the manifests' kubernetes-pods job");
    assert.equal(series!.metric['kubernetes_namespace'], 'promsnap', "added by the manifests' relabel rules");
    // Revision 00001: one apply makes one Revision (a Knative Service stored before Knative's webhook served it
    // got a second one when Knative's controller defaulted its Configuration).
    assert.match(series!.metric['kubernetes_pod_name'] ?? '', /^simulation-00001-deployment-[a-z0-9]+-[a-z0-9]{5}$/, 'the pod Knative made');
    assert.equal(series!.metric['serving_knative_dev_service'], 'simulation', 'pod labels copied by labelmap');
    assert.equal(series!.metric['exported_app'], undefined, "Knative's app=<revision> pod label is dropped, not clashing");
  });

  it('npm run load -- -z 30s -c 50 scales the simulation to 4 pods or more, and the exports hold series from every pod', async (t) => {
    const pods = async () => {
      const { stdout } = await runCommand(
        findTool('kubectl'),
        ['get', 'pods', '-n', 'promsnap', '-l', 'serving.knative.dev/service=simulation', '-o', 'json'],
        { env: env() },
      );
      return (
        JSON.parse(stdout) as {
          items: Array<{ metadata: { name: string; deletionTimestamp?: string }; status?: { conditions?: Array<{ type: string; status: string }> } }>;
        }
      ).items;
    };
    const timeline: Array<{ at: number; pods: number; ready: number }> = [];
    let peakMemory = 0;
    let watching = true;
    const loadStartedAt = Date.now();
    const watch = (async () => {
      while (watching) {
        const items = await pods().catch(() => undefined);
        if (items) {
          const now = Date.now();
          const ready = items.filter((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
          for (const p of ready) readyPods.set(p.metadata.name, { from: readyPods.get(p.metadata.name)?.from ?? now, to: now });
          const last = timeline.at(-1);
          if (!last || last.pods !== items.length || last.ready !== ready.length)
            timeline.push({ at: now - loadStartedAt, pods: items.length, ready: ready.length });
          peakMemory = Math.max(peakMemory, clusterMemory({ traces: first.state.sandbox }).rssBytes);
        }
        await sleep(1_000);
      }
      return timeline;
    })();
    const load = await runCommand(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'platform/local/load.ts'), '--data-dir', dataDir, '-z', '30s', '-c', '50'],
      {
        cwd: repoRoot,
        allowFailure: true,
      },
    );
    t.diagnostic(load.stdout.trim().split('\n').join(' | '));
    assert.equal(load.code, 0, `${load.stdout}\n${load.stderr}`);
    assert.match(
      load.stdout,
      /^Sending load to http:\/\/simulation\.promsnap\.example\.com\/simulate-requests via http:\/\/127\.0\.0\.1:\d+ \(Host: simulation\.promsnap\.example\.com\)/m,
    );
    const hey = /^hey: (\d+) responses .*: (\d+) x 200/m.exec(load.stdout);
    assert.ok(hey && Number(hey[2]) > 0, load.stdout);
    const peak = Number(/^pods: peak (\d+)/m.exec(load.stdout)?.[1]);
    assert.ok(peak >= 4, `npm run load saw a peak of ${peak} pods:\n${load.stdout}`);
    t.diagnostic(`memory at the peak (${Math.max(...timeline.map((p) => p.pods))} simulation pods): ${mb(peakMemory)}`);

    // And back: the watch goes on until the autoscaler is back at min-scale (awaited in the next test).
    scaleBack = (async () => {
      await waitFor(() => (timeline.at(-1)?.pods === 1 && timeline.at(-1)?.ready === 1 ? true : undefined), {
        timeoutMs: 240_000,
        intervalMs: 1_000,
        what: 'the simulation back at one pod',
      });
      watching = false;
      return watch;
    })();
    scaleBack.catch(() => undefined);

    // Every pod Ready as the load ends: the autoscaler keeps them through its stable window (60 s), four
    // scrape intervals and more, so each must show up in the exports from the load's start on.
    const loadEndedAt = Date.now();
    const expected = [...readyPods.entries()].filter(([, seen]) => seen.to >= loadEndedAt - 3_000).map(([name]) => name);
    assert.ok(expected.length >= 4, `pods Ready as the load ended: ${expected.join(', ')}`);
    const inExports = new Set<string>();
    const read = new Set<string>();
    const missing = await waitFor(
      async () => {
        for (const key of (await listKeys(client, bucket, rangeFolder)).filter((k) => !read.has(k))) {
          read.add(key);
          if ((parseRangeKey(key)?.tick ?? 0) < loadStartedAt) continue;
          const exported = JSON.parse(await readText(client, bucket, key)) as RangeExport;
          for (const s of seriesNamed(exported, 'simulation_app_requests_total')) inExports.add(s.metric['kubernetes_pod_name'] ?? '');
        }
        const left = expected.filter((name) => !inExports.has(name));
        return left.length === 0 ? left : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 2_000, what: `series from every simulation pod (${expected.join(', ')}) in the exports` },
    );
    assert.deepEqual(missing, []);
    t.diagnostic(`${expected.length} pods, each in the exports since the load began (${read.size} exports read)`);
  });

  it('and the simulation scales back to one pod', async (t) => {
    assert.ok(scaleBack, 'the load test ran');
    const timeline = await scaleBack;
    t.diagnostic(
      `pod count timeline (s after the load began: pods/ready): ${timeline.map((p) => `+${(p.at / 1000).toFixed(1)} ${p.pods}/${p.ready}`).join(', ')}`,
    );
    assert.ok(Math.max(...timeline.map((p) => p.pods)) >= 4);
    assert.deepEqual([timeline.at(-1)?.pods, timeline.at(-1)?.ready], [1, 1]);
  });

  it("skaffold dev -p local: a change to the simulation's source becomes a new Revision that serves it", async (t) => {
    const copy = await repoCopy(path.join(dataDir, 'repo-copy'));
    const appFile = path.join(copy, 'functions/simulation/src/app.ts');
    const source = await readFile(appFile, 'utf8');
    const marker = 'simulation, rebuilt by skaffold dev';
    assert.ok(source.includes("service: 'simulation'"), 'the route to change is in app.ts');
    const ksvc = async () =>
      JSON.parse((await runCommand(findTool('kubectl'), ['get', 'ksvc', 'simulation', '-n', 'promsnap', '-o', 'json'], { env: env() })).stdout) as {
        spec: { template: { spec: { containers: Array<{ image: string }> } } };
        status: { latestReadyRevisionName: string };
      };
    const host = new URL(first.lines.simulation).host;

    // As README says to run it: the local node serves no pod logs (--tail=false), and the platform stays
    // when Skaffold stops (--cleanup=false), npm start having applied it.
    const dev = spawn(findTool('skaffold'), ['dev', '-p', 'local', '--tail=false', '--cleanup=false', '--status-check=false'], {
      cwd: copy,
      env: { ...env(), DOCKER_HOST: `unix://${path.join(dataDir, 'docker.sock')}`, PROMSNAP_DATA_DIR: dataDir, SKAFFOLD_UPDATE_CHECK: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    dev.stdout.on('data', (d: Buffer) => (output += d.toString()));
    dev.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => dev.once('close', resolve));
    t.after(async () => {
      if (dev.exitCode === null) dev.kill('SIGINT');
      await exited;
    });
    const watching = (n: number) =>
      waitFor(() => (output.split('Watching for changes...').length > n ? true : dev.exitCode !== null ? Promise.reject(new Error(output)) : undefined), {
        timeoutMs: 240_000,
        intervalMs: 500,
        what: `skaffold dev watching (${n})`,
      });
    await watching(1);
    const deployed = await ksvc();
    assert.match(deployed.spec.template.spec.containers[0]!.image, /^dev\.local\/simulation:\S+$/);
    assert.notEqual(deployed.spec.template.spec.containers[0]!.image, 'dev.local/simulation:0.1.0', "Skaffold's tag, not npm start's");

    const changedAt = Date.now();
    await writeFile(appFile, source.replace("service: 'simulation'", `service: '${marker}'`));
    await watching(2);
    assert.match(output, /dev\.local\/simulation:\S+: functions\/simulation\/Dockerfile replayed into the local cluster's image store/);
    const served = await waitFor(
      async () => {
        const res = await getBodyVia(first.lines.ingress, host, '/');
        return res.status === 200 && res.body.includes(marker) ? res.body : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1_000, what: 'the changed simulation served through its ksvc URL' },
    );
    const rolled = await ksvc();
    assert.notEqual(rolled.status.latestReadyRevisionName, deployed.status.latestReadyRevisionName, 'a new Revision');
    t.diagnostic(
      `${deployed.status.latestReadyRevisionName} -> ${rolled.status.latestReadyRevisionName} (${rolled.spec.template.spec.containers[0]!.image}) serving the change ${Math.round((Date.now() - changedAt) / 1000)} s after it was saved: ${served.slice(0, 60)}`,
    );
    dev.kill('SIGINT');
    await exited;
    assert.equal(
      (await ksvc()).status.latestReadyRevisionName,
      rolled.status.latestReadyRevisionName,
      'the platform stays after skaffold dev ends (--cleanup=false)',
    );
    // Skaffold's labels on what it applied restart Prometheus, MinIO and kube-state-metrics (README says
    // so): the tests after this one read MinIO and Prometheus, so their rollouts must be over first.
    for (const [namespace, name] of [
      ['monitoring', 'prometheus'],
      ['monitoring', 'kube-state-metrics'],
      ['promsnap', 'minio'],
    ] as const) {
      await runCommand(findTool('kubectl'), ['rollout', 'status', `deployment/${name}`, '-n', namespace, '--timeout=180s'], { env: env() });
    }
  });

  let tree: ProcessId[] = [];
  let interruptedTick = 0;
  let storedBefore: string[] = [];
  it('Ctrl-C: exit 0 after the export in flight is stored, and nothing is left behind', async () => {
    tree = descendants(first.runner.child.pid!);
    storedBefore = await listKeys(client, bucket, '');
    assert.ok(tree.length >= 10, `the cluster's processes: ${tree.map((p) => commandOf(p.pid)).join('; ')}`);
    // Three seconds after a tick, that tick's export is waiting for its window to settle (10 s).
    const now = Date.now();
    interruptedTick = Math.ceil(now / periodMs) * periodMs;
    await sleep(interruptedTick + 3_000 - now);
    const exit = await interrupt(first.runner);
    assert.deepEqual(exit, { code: 0, signal: null }, first.runner.output().slice(-3000));
    assert.match(first.runner.output(), /^\s+waiting for \d+ snapshots? in flight to be stored$/m, 'the export of the tick before Ctrl-C was in flight');
    assert.match(first.runner.output(), /^stopped$/m);
    assert.deepEqual(
      tree.filter(alive).map((p) => `${p.pid} ${commandOf(p.pid)}`),
      [],
      'no process of the run is left',
    );
    assert.deepEqual(sandboxLeftovers(first.state.sandbox), { processes: [], mounts: [], dir: false }, 'no process, mount or state dir of the sandbox');
    assert.deepEqual(
      (await hostLinks()).map((l) => `${l.name} (${l.kind})`),
      linksBefore,
      'no veth or bridge left on the host',
    );
  });

  it('a second start on the same data dir keeps the bucket (the interrupted export complete) and the TSDB', async (t) => {
    assert.ok(interruptedTick > 0 && requestsSeenAt > 0, 'the earlier tests ran');
    second = await start(dataDir);
    const kept = Number((await second.runner.waitForLine(/the bucket keeps (\d+) snapshots/, 30_000))[1]);
    t.diagnostic(`second start: ${second.runner.lines.find((l) => /^ready in /.test(l))}; the bucket keeps ${kept} objects`);
    const secondClient = createS3Client({
      endpoint: second.lines.mc.endpoint,
      region: 'us-east-1',
      accessKeyId: second.lines.mc.user,
      secretAccessKey: second.lines.mc.password,
    });
    t.after(() => secondClient.destroy());
    const key = rangeKey({ namespace: 'promsnap', name: 'snapshot-schedule', rangeMs: periodMs, tick: interruptedTick, gzip: false });
    const exported = JSON.parse(await readText(secondClient, bucket, key)) as RangeExport;
    assert.equal(Date.parse(exported.end), interruptedTick, 'the export in flight at Ctrl-C was stored whole');
    assert.ok(exported.series > 0);
    const now = new Set(await listKeys(secondClient, bucket, ''));
    assert.deepEqual(
      storedBefore.filter((k) => !now.has(k)),
      [],
      'every object stored before the restart is still there',
    );
    assert.ok(kept >= storedBefore.length - 1, `the restart counts ${kept} kept, ${storedBefore.length} were listed before Ctrl-C`);

    // A sample scraped before the restart, from the TSDB on its claim.
    const at = (requestsSeenAt / 1000).toFixed(3);
    const res = await fetch(
      `${second.lines.prometheus}/api/v1/query?query=${encodeURIComponent('simulation_app_requests_total{route="/simulate-requests"}')}&time=${at}`,
    );
    const body = (await res.json()) as { status: string; data: { result: Series[] } };
    assert.equal(body.status, 'success');
    assert.ok(body.data.result.length > 0, `no sample at ${new Date(requestsSeenAt).toISOString()} after the restart: ${JSON.stringify(body)}`);

    const exit = await interrupt(second.runner);
    assert.deepEqual(exit, { code: 0, signal: null }, second.runner.output().slice(-3000));
    assert.deepEqual(sandboxLeftovers(second.state.sandbox), { processes: [], mounts: [], dir: false });
  });
});
