import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BackOff } from '../backoff.js';
import { execIn, httpGet, probeUserAgent, resolvePort, runHook, runProbe, tcpSocket, type ExecInContainer } from '../handlers.js';
import { resolveInRoot } from '../rootfs.js';

/** A server on loopback that answers by path and remembers the headers it saw. */
async function server(t: { after: (fn: () => Promise<void>) => void }) {
  const seen: http.IncomingHttpHeaders[] = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/ok') return res.writeHead(200).end('fine');
    if (req.url === '/moved') return res.writeHead(302, { location: '/ok' }).end();
    if (req.url === '/away') return res.writeHead(302, { location: 'http://elsewhere.invalid/' }).end();
    if (req.url === '/slow') return setTimeout(() => res.writeHead(200).end(), 600);
    res.writeHead(503).end('not yet');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  srv.unref();
  return { port: (srv.address() as AddressInfo).port, seen };
}

const local: ExecInContainer = (command) => ({ file: command[0]!, args: command.slice(1), env: {} });

test('httpGet sends the kube-probe User-Agent, Accept */* and the probe’s own headers, to the pod IP and a named port', async (t) => {
  const { port, seen } = await server(t);
  const container = { name: 'c', ports: [{ name: 'http', containerPort: port }] };
  const outcome = await httpGet({ path: '/ok', port: 'http', httpHeaders: [{ name: 'K-Network-Probe', value: 'queue' }] }, container, '127.0.0.1', 1_000);
  assert.deepEqual(outcome, { result: 'success', output: 'fine' });
  assert.equal(seen[0]!['user-agent'], probeUserAgent);
  assert.equal(seen[0]!['accept'], '*/*');
  assert.equal(seen[0]!['k-network-probe'], 'queue');
  assert.equal(seen[0]!['connection'], 'close', 'no keep-alive between probes');
});

test('httpGet: 5xx fails with the kubelet’s message, a same-host redirect is followed, one off-host passes with a warning', async (t) => {
  const { port } = await server(t);
  const container = { name: 'c' };
  assert.deepEqual(await httpGet({ path: '/nope', port }, container, '127.0.0.1', 1_000), {
    result: 'failure',
    output: 'HTTP probe failed with statuscode: 503',
  });
  assert.equal((await httpGet({ path: '/moved', port }, container, '127.0.0.1', 1_000)).output, 'fine');
  const away = await httpGet({ path: '/away', port }, container, '127.0.0.1', 1_000);
  assert.equal(away.result, 'success');
  assert.equal(away.warning, true);
  const slow = await httpGet({ path: '/slow', port }, container, '127.0.0.1', 200);
  assert.equal(slow.result, 'failure');
  assert.match(slow.output, /context deadline exceeded/);
  assert.deepEqual(await httpGet({ port: 'metrics' }, container, '127.0.0.1', 1_000), {
    result: 'error',
    output: 'unable to resolve port metrics of container c',
  });
});

test('tcpSocket passes when the port accepts and fails when nothing listens; ports resolve by name or number', async (t) => {
  const { port } = await server(t);
  assert.equal((await tcpSocket('127.0.0.1', port, 1_000)).result, 'success');
  const closed = await tcpSocket('127.0.0.1', 1, 1_000);
  assert.equal(closed.result, 'failure');
  assert.match(closed.output, /^dial tcp 127\.0\.0\.1:1: /);
  assert.equal(resolvePort('8080', { name: 'c' }), 8080);
  assert.equal(resolvePort('web', { name: 'c', ports: [{ name: 'web', containerPort: 80 }] }), 80);
  assert.equal(resolvePort(70_000, { name: 'c' }), undefined);
});

test('exec passes on exit 0, fails with the output otherwise, and is killed at the timeout', async () => {
  const node = process.execPath;
  assert.equal((await execIn(local, [node, '-e', 'process.exit(0)'], 5_000)).result, 'success');
  const failed = await execIn(local, [node, '-e', 'console.log("broken"); process.exit(2)'], 5_000);
  assert.equal(failed.result, 'failure');
  assert.match(failed.output, /exited with 2: broken/);
  const slow = await execIn(local, [node, '-e', 'setTimeout(() => {}, 10000)'], 300);
  assert.match(slow.output, /timed out/);
  assert.equal((await runProbe({ exec: { command: [node, '-e', ''] } }, { name: 'c' }, '127.0.0.1', local)).result, 'success');
});

test('a sleep hook waits its seconds, cut short by the time left', async () => {
  const started = Date.now();
  await runHook({ sleep: { seconds: 5 } }, { name: 'c' }, '127.0.0.1', local, 150);
  const took = Date.now() - started;
  assert.ok(took >= 140 && took < 2_000, `took ${took} ms`);
});

test('paths in a container root resolve through its symlinks without leaving it', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'node-root-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'usr/lib'), { recursive: true });
  await symlink('usr/lib', path.join(root, 'lib'));
  await mkdir(path.join(root, 'run'));
  await mkdir(path.join(root, 'var'));
  await symlink('../run', path.join(root, 'var/run'));
  await symlink('/etc', path.join(root, 'escape'));
  await symlink('../../../..', path.join(root, 'up'));
  assert.equal(await resolveInRoot(root, '/lib/x.so'), '/usr/lib/x.so');
  assert.equal(await resolveInRoot(root, '/var/run/secrets/token'), '/run/secrets/token');
  assert.equal(await resolveInRoot(root, '/escape/passwd'), '/etc/passwd', 'an absolute link resolves inside the root');
  assert.equal(await resolveInRoot(root, '/up/etc'), '/etc', '.. stops at the root');
});

test('image pulls back off from the last failure: 10 s, then 20 s', () => {
  const backOff = new BackOff();
  assert.equal(backOff.remaining('img', 0), 0);
  backOff.failed('img', 1_000);
  assert.equal(backOff.remaining('img', 5_000), 6_000);
  assert.equal(backOff.remaining('img', 11_000), 0);
  backOff.failed('img', 11_000);
  assert.equal(backOff.remaining('img', 11_000), 20_000);
});
