// The cluster sandbox (tools/sandbox.ts) and its forwards (tools/forward.ts), for real: one sandbox for
// the file, processes entered into it, a pod-like network namespace on its bridge, the host reaching in
// through forwards, and, after stop, nothing of it left on the machine. Plus the same smoke run as an
// unprivileged user in a user namespace of its own, and the probe's explanations when it cannot work.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../command.js';
import { findSystemTool } from '../find.js';
import { httpGet } from '../http.js';
import { startProcess, terminate } from '../process.js';
import { explainSandboxFailure, hostLinks, sandboxLeftovers, sandboxSupport, startSandbox } from '../sandbox.js';

const toolsDir = fileURLToPath(new URL('..', import.meta.url));

/** A tiny HTTP server for inside the sandbox: answers with its PID, uid, TMPDIR and network namespace. */
function server(host: string, port: number): string[] {
  const script = `
    const fs = require('node:fs');
    require('node:http').createServer((req, res) => res.end(JSON.stringify({
      pid: process.pid, uid: process.getuid(), tmpdir: process.env.TMPDIR, netns: fs.readlinkSync('/proc/self/ns/net'), path: req.url,
    }))).listen(${port}, ${JSON.stringify(host)});
    process.on('SIGTERM', () => setTimeout(() => process.exit(0), 300));`;
  return ['-e', script];
}

test('the probe says a sandbox can be made here, with the privilege this process has', async () => {
  const support = await sandboxSupport();
  if (!support.available) assert.fail(`${support.reason}\n  ${support.fix}`);
  assert.equal(support.privilege, process.geteuid?.() === 0 ? 'root' : 'rootless');
});

test('where namespaces cannot be made, the probe names the setting and the command that enables it', () => {
  const stderr = 'unshare: unshare failed: Operation not permitted\n';
  const rootless = (sysctls: Parameters<typeof explainSandboxFailure>[0]['sysctls']) => explainSandboxFailure({ privilege: 'rootless', stderr, sysctls });
  assert.match(rootless({ 'kernel.unprivileged_userns_clone': '0' }).fix, /sysctl -w kernel\.unprivileged_userns_clone=1.*or run as root/);
  assert.match(rootless({ 'user.max_user_namespaces': '0' }).reason, /user\.max_user_namespaces = 0/);
  assert.match(rootless({ 'kernel.apparmor_restrict_unprivileged_userns': '1' }).fix, /apparmor_restrict_unprivileged_userns=0/);
  assert.match(rootless({ 'user.max_user_namespaces': '15000' }).reason, /unshare --user failed \(unshare: unshare failed: Operation not permitted\)/);
  const root = explainSandboxFailure({ privilege: 'root', stderr, sysctls: {} });
  assert.match(root.reason, /CAP_SYS_ADMIN/);
  assert.match(root.fix, /--privileged/);
});

test('a sandbox', async (t) => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'promsnap-sandbox-test-'));
  t.after(() => rm(parent, { recursive: true, force: true }));
  const dir = path.join(parent, 'state');
  const kept = path.join(parent, 'data');
  const linksBefore = await hostLinks();
  const started = Date.now();
  const sandbox = await startSandbox({ dir, writable: [kept] });
  t.diagnostic(`sandbox (${sandbox.privilege}) started in ${Date.now() - started} ms`);
  t.after(() => sandbox.stop());

  await t.test('holds a network of its own: loopback, the bridge with its address, the ClusterIP range local', async () => {
    const addresses = JSON.parse((await sandbox.run('ip', ['-j', 'addr', 'show'])).stdout) as Array<{
      ifname: string;
      operstate: string;
      addr_info: Array<{ local: string; prefixlen: number }>;
    }>;
    assert.deepEqual(addresses.map((a) => a.ifname).sort(), ['cbr0', 'lo']);
    const bridge = addresses.find((a) => a.ifname === 'cbr0')!;
    assert.ok(bridge.addr_info.some((a) => a.local === '10.244.0.1' && a.prefixlen === 16));
    const local = (await sandbox.run('ip', ['route', 'show', 'table', 'local'])).stdout;
    assert.match(local, /^local 10\.96\.0\.0\/16 dev lo/m);
    const links = await hostLinks();
    assert.deepEqual(
      links.filter((l) => !linksBefore.some((b) => b.name === l.name)),
      [],
      "nothing was made in the host's network namespace",
    );
  });

  let serverProcess: Awaited<ReturnType<typeof startProcess>> | undefined;
  await t.test('runs an entered process in its namespaces, ready when its URL answers from inside', async () => {
    serverProcess = await startProcess(
      sandbox.enter({ name: 'server', command: process.execPath, args: server('10.244.0.1', 8080), readyUrl: 'http://10.244.0.1:8080/' }),
    );
    const seen = JSON.parse((await httpGet('http://10.244.0.1:8080/', { dial: sandbox.dial })).body) as { pid: number; tmpdir: string; netns: string };
    // Its own PID namespace (small numbers, the init is 1) and network namespace.
    assert.ok(seen.pid < 1000 && seen.pid !== serverProcess.pid, `PID inside: ${seen.pid}`);
    assert.equal(seen.netns, sandbox.traces.namespaces.net);
    assert.equal(seen.tmpdir, path.join(dir, 'tmp'));
  });

  await t.test('runs an entered process as the uid and gid asked for', { skip: sandbox.privilege === 'rootless' && 'only root may switch users' }, async () => {
    const child = await startProcess(
      sandbox.enter({
        name: 'as-nobody',
        command: process.execPath,
        args: server('10.244.0.1', 8081),
        uid: 65534,
        gid: 65534,
        readyUrl: 'http://10.244.0.1:8081/',
      }),
    );
    t.after(() => child.stop('SIGKILL', 1_000));
    const seen = JSON.parse((await httpGet('http://10.244.0.1:8081/', { dial: sandbox.dial })).body) as { uid: number };
    assert.equal(seen.uid, 65534);
  });

  await t.test('refuses writes to the host outside the state dir and the writable paths', async () => {
    for (const outside of [
      '/usr/promsnap-sandbox-test',
      '/etc/promsnap-sandbox-test',
      path.join(os.tmpdir(), 'promsnap-sandbox-test'),
      '/dev/promsnap-sandbox-test',
    ]) {
      const result = await sandbox.run('touch', [outside], { allowFailure: true });
      assert.notEqual(result.code, 0, `${outside} was writable`);
      assert.match(result.stderr, /Read-only file system/);
      assert.equal(existsSync(outside), false);
    }
    await sandbox.run('touch', [path.join(dir, 'inside'), path.join(kept, 'kept'), '/dev/shm/inside']);
    assert.ok(existsSync(path.join(dir, 'inside')) && existsSync(path.join(kept, 'kept')));
    assert.equal(existsSync('/dev/shm/inside'), false, "/dev/shm is the sandbox's own");
  });

  await t.test('reports an entered process exit code, and gives it the grace its SIGTERM handler takes', async () => {
    const failing = await startProcess(sandbox.enter({ name: 'failing', command: process.execPath, args: ['-e', 'setTimeout(() => process.exit(3), 100)'] }));
    assert.equal(await failing.exited, 3);
    const started = Date.now();
    // The server exits 0, 300 ms after SIGTERM: not killed at once, not reported as a signal.
    assert.equal(await serverProcess!.stopWith(terminate(10_000)), 0);
    assert.ok(Date.now() - started >= 250, `stopped after ${Date.now() - started} ms`);
    const stubborn = await startProcess(
      sandbox.enter({ name: 'stubborn', command: process.execPath, args: ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"] }),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await stubborn.stopWith(terminate(300)), 'SIGKILL');
  });

  await t.test('forwards host loopback ports to addresses inside, ClusterIPs included, many connections at once', async () => {
    const onBridge = await startProcess(
      sandbox.enter({ name: 'on-bridge', command: process.execPath, args: server('10.244.0.1', 8080), readyUrl: 'http://10.244.0.1:8080/' }),
    );
    const onClusterIp = await startProcess(
      sandbox.enter({ name: 'on-cluster-ip', command: process.execPath, args: server('10.96.0.10', 80), readyUrl: 'http://10.96.0.10/' }),
    );
    t.after(() => Promise.all([onBridge.stop('SIGKILL', 1_000), onClusterIp.stop('SIGKILL', 1_000)]));
    const toBridge = await sandbox.forward({ host: '10.244.0.1', port: 8080 });
    const toClusterIp = await sandbox.forward({ host: '10.96.0.10', port: 80 });
    assert.match(toBridge.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const answers = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const forward = i % 2 === 0 ? toBridge : toClusterIp;
        const res = await fetch(`${forward.url}/request-${i}`);
        return (JSON.parse(await res.text()) as { path: string }).path;
      }),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 40 }, (_, i) => `/request-${i}`),
    );
    await toClusterIp.close();
    await assert.rejects(fetch(toClusterIp.url), 'a closed forward no longer listens');
  });

  await t.test('a connection to a port nobody listens on inside is refused, with the reason', async () => {
    await assert.rejects(sandbox.dial({ host: '10.244.0.1', port: 9 }), /connect 10\.244\.0\.1:9 in the sandbox: connect ECONNREFUSED/);
    const forward = await sandbox.forward({ host: '10.244.0.1', port: 9 });
    await assert.rejects(fetch(forward.url));
  });

  await t.test('joins a pod-like network namespace to its bridge with a veth, reachable both ways', async () => {
    let podPid: string | undefined;
    const holder = await startProcess(
      sandbox.enter({
        name: 'pod holder',
        command: findSystemTool('unshare'),
        args: ['--net', process.execPath, '-e', 'console.log(process.pid); setInterval(() => {}, 1000)'],
        onLine: (line) => (podPid ??= line.trim()),
        readyCheck: { what: 'the pod holder to print its PID', check: () => podPid !== undefined },
      }),
    );
    await sandbox.run('ip', ['link', 'add', 'vp-test', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', podPid!]);
    await sandbox.run('ip', ['link', 'set', 'vp-test', 'master', 'cbr0', 'up']);
    const inPod = (args: string[]) => sandbox.run('nsenter', [`--target=${podPid}`, '--net', '--', ...args]);
    await inPod(['ip', 'link', 'set', 'lo', 'up']);
    await inPod(['ip', 'addr', 'add', '10.244.1.7/16', 'dev', 'eth0']);
    await inPod(['ip', 'link', 'set', 'eth0', 'up']);
    await inPod(['ip', 'route', 'add', 'default', 'via', '10.244.0.1']);
    const podServer = await startProcess(
      sandbox.enter({
        name: 'pod server',
        command: 'nsenter',
        args: [`--target=${podPid}`, '--net', '--', process.execPath, ...server('0.0.0.0', 8080)],
        readyUrl: 'http://10.244.1.7:8080/',
      }),
    );
    const toPod = await sandbox.forward({ host: '10.244.1.7', port: 8080 });
    const seen = JSON.parse(await (await fetch(toPod.url)).text()) as { netns: string };
    assert.notEqual(seen.netns, sandbox.traces.namespaces.net, "the pod's own network namespace");
    // The pod reaches the bridge address (where the control plane listens) through its default route.
    const bridgeServer = await startProcess(
      sandbox.enter({ name: 'bridge server', command: process.execPath, args: server('10.244.0.1', 8082), readyUrl: 'http://10.244.0.1:8082/' }),
    );
    const fromPod = await inPod([process.execPath, '-e', "fetch('http://10.244.0.1:8082/from-pod').then((r) => r.text()).then(console.log)"]);
    assert.equal((JSON.parse(fromPod.stdout) as { path: string }).path, '/from-pod');
    // Killing the holder takes the pod's namespace and the veth with it.
    await Promise.all([podServer.stop('SIGKILL', 1_000), holder.stop('SIGKILL', 1_000), bridgeServer.stop('SIGKILL', 1_000)]);
    await waitForLinkGone((command, args) => sandbox.run(command, args), 'vp-test');
  });

  await t.test('stop leaves nothing: no process in its namespaces, no mount, no state dir, the host links as before', async () => {
    const traces = sandbox.traces;
    assert.ok(sandboxLeftovers(traces).processes.length > 0);
    const stopped = Date.now();
    await sandbox.stop();
    t.diagnostic(`stopped in ${Date.now() - stopped} ms`);
    assert.deepEqual(sandboxLeftovers(traces), { processes: [], mounts: [], dir: false });
    assert.equal(existsSync(path.join(kept, 'kept')), true, 'a writable path outside the state dir is kept');
    assert.equal(sandbox.alive, false);
    const links = await hostLinks();
    assert.deepEqual(
      links.filter((l) => !linksBefore.some((b) => b.name === l.name)),
      [],
    );
    await sandbox.stop();
  });
});

async function waitForLinkGone(run: (command: string, args: string[]) => Promise<{ stdout: string }>, name: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await run('ip', ['-o', 'link', 'show'])).stdout.includes(` ${name}@`)) {
    if (Date.now() > deadline) assert.fail(`${name} still exists after its pod's namespace went`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a state dir in use is refused; one left by a dead run is taken over', async (t) => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'promsnap-sandbox-claim-'));
  t.after(() => rm(parent, { recursive: true, force: true }));
  await assert.rejects(startSandbox({ dir: parent }), /exists and is not a sandbox's state dir/);
  const dir = path.join(parent, 'state');
  await mkdir(dir);
  // What a run killed before its reaper finished would leave: a lock naming a process long gone.
  await writeFile(path.join(dir, 'sandbox.json'), JSON.stringify({ id: 'dead', harness: { pid: 999_999, startTime: '1' } }));
  await writeFile(path.join(dir, 'stale-file'), '');
  const sandbox = await startSandbox({ dir });
  t.after(() => sandbox.stop());
  assert.equal(existsSync(path.join(dir, 'stale-file')), false);
  await assert.rejects(startSandbox({ dir }), new RegExp(`in use by the sandbox of process ${process.pid}`));
});

test('a rootless sandbox, as nobody in a user namespace of its own', async (t) => {
  if (process.geteuid?.() !== 0) {
    t.skip('this process is not root: the sandbox of this file is already a rootless one');
    return;
  }
  // nobody cannot read root's home, where the checkout and the pinned Node may live: a copy of
  // platform/tools and a link to this Node in a folder of its own, run with Node's own TypeScript support
  // (and a resolve hook mapping the imports' .js to the .ts files).
  const work = await mkdtemp(path.join(os.tmpdir(), 'promsnap-rootless-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  await chmod(work, 0o755);
  const tools = path.join(work, 'platform', 'tools');
  await cp(toolsDir, tools, { recursive: true, filter: (source) => !source.includes(`${path.sep}gomod`) });
  await writeFile(path.join(work, 'package.json'), JSON.stringify({ type: 'module' }));
  const hook = path.join(work, 'resolve-ts.mjs');
  await writeFile(
    hook,
    [
      "import { registerHooks } from 'node:module';",
      "import { existsSync } from 'node:fs';",
      "import { fileURLToPath } from 'node:url';",
      'registerHooks({ resolve(specifier, context, next) {',
      "  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL) {",
      "    const ts = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);",
      '    if (existsSync(fileURLToPath(ts))) return next(ts.href, context);',
      '  }',
      '  return next(specifier, context);',
      '} });',
    ].join('\n'),
  );
  const node = path.join(work, 'node');
  await link(process.execPath, node).catch(() => cp(process.execPath, node));
  const home = path.join(work, 'home');
  await mkdir(home);
  await chown(home, 65534, 65534);
  await runCommand('chmod', ['-R', 'a+rX', work]);

  const result = await runCommand(
    findSystemTool('setpriv'),
    [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--',
      node,
      // Parameter properties (CommandError's) need more than stripping.
      '--experimental-transform-types',
      '--no-warnings',
      '--import',
      hook,
      path.join(tools, 'test', 'fixtures', 'rootless-sandbox.ts'),
      path.join(home, 'state'),
    ],
    { cwd: work, env: { PATH: `${work}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: home }, timeoutMs: 60_000, allowFailure: true },
  );
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as
    | { available: false; reason: string; fix: string }
    | { available: true; privilege: string; hostUid: number; startMs: number; answer: string; writeOutside: string; otherUser: string; leftovers: unknown };
  if (!report.available) {
    // The machine does not allow it: the probe must say why and how to change that.
    assert.ok(report.reason.length > 0 && report.fix.length > 0);
    t.skip(`user namespaces are not available to nobody here: ${report.reason}; ${report.fix}`);
    return;
  }
  t.diagnostic(`rootless sandbox started in ${report.startMs} ms`);
  assert.equal(report.privilege, 'rootless');
  assert.equal(report.hostUid, 65534);
  // Root inside its user namespace, nobody outside.
  assert.match(report.answer, /^uid 0 pid \d+$/);
  assert.match(report.writeOutside, /Read-only file system|Permission denied/);
  assert.match(report.otherUser, /as-1000: a rootless sandbox cannot switch to uid 1000, gid 1000/);
  assert.deepEqual(report.leftovers, { processes: [], mounts: [], dir: false });
  assert.equal(existsSync(path.join(home, 'state')), false);
});
