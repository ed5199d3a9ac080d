// The cluster sandbox: one set of Linux namespaces (PID, network, mount; plus a user namespace when not
// root) that holds everything a local cluster runs, so that nothing of it is ever made in the host's
// namespaces, and all of it goes when the sandbox goes.
//
//   setpriv --pdeathsig SIGKILL unshare [--user --map-root-user] --net --mount --pid --fork --kill-child
//
// The harness's death SIGKILLs `unshare`, `--kill-child` SIGKILLs the PID namespace's init, and the
// kernel kills every process left inside; with the last one go the network namespace (bridge, veths,
// routes) and the mount namespace (every mount made inside). A host-side reaper (sandbox-reaper.ts)
// then removes the state dir. Inside:
//   - a bridge (cbr0, 10.244.0.1/16) and `ip route add local 10.96.0.0/16 dev lo`, so servers of ours
//     can bind any ClusterIP;
//   - the host's filesystems remounted read-only, except the state dir (same path inside and out) and
//     the paths the caller names writable: a process that would write elsewhere on the host (as
//     kube-controller-manager does to /usr/libexec unless told otherwise) fails loudly instead;
//     TMPDIR points into the state dir, /dev/shm is a tmpfs of the sandbox's own.
// Processes are entered with nsenter, as StartOptions for process.ts, so they are registered, stopped
// and waited for like any other; the host reaches TCP addresses inside through forward.ts.
//
// The init is bash, the one shell here: PID 1 of a namespace must reap the orphans re-parented to it,
// which Node cannot do for processes it did not start, and bash's SIGCHLD handler does.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type CommandOptions, type CommandResult } from './command.js';
import { findSystemTool, MissingToolError } from './find.js';
import { dialVia, forwarderScript, listenForward, type Dial, type Forward, type ForwardTarget } from './forward.js';
import { getOk } from './http.js';
import { onCleanup, startProcess, type ManagedProcess, type StartOptions } from './process.js';
import { sleep, waitFor } from './wait.js';

export type { Forward, ForwardTarget } from './forward.js';

export type Privilege = 'root' | 'rootless';

export type SandboxSupport = { available: true; privilege: Privilege } | { available: false; reason: string; fix: string };

export interface SandboxNetwork {
  bridge: string;
  /** The bridge's address with its prefix, e.g. '10.244.0.1/16'. */
  address: string;
  /** Ranges made local inside (any address in them can be bound), e.g. ['10.96.0.0/16']. */
  localRoutes: string[];
}

export const defaultSandboxNetwork: SandboxNetwork = { bridge: 'cbr0', address: '10.244.0.1/16', localRoutes: ['10.96.0.0/16'] };

export interface SandboxOptions {
  /** The state dir: created (it must not exist, or be left by a dead run), same path inside; removed by stop(). */
  dir: string;
  network?: SandboxNetwork;
  /** Host paths besides dir that processes inside may write (a data dir kept between runs); created if missing. */
  writable?: string[];
}

/** What identifies a sandbox's footprint on the machine, for counting leftovers after it is gone. */
export interface SandboxTraces {
  dir: string;
  /** Host PID of the PID namespace's init. */
  initPid: number;
  /** The namespaces' ids as /proc/PID/ns/* links read them, e.g. 'net:[4026532281]'. */
  namespaces: { pid: string; net: string; mnt: string };
}

export interface Sandbox {
  readonly privilege: Privilege;
  /** State dir, same path inside and outside. */
  readonly dir: string;
  readonly network: SandboxNetwork;
  readonly traces: SandboxTraces;
  /** False once the sandbox has died or been stopped. */
  readonly alive: boolean;
  /**
   * StartOptions that run options.command inside the sandbox's namespaces (for startProcess). uid/gid
   * are applied inside (as root only: a rootless sandbox maps one user, and refuses others); readyUrl is
   * checked from inside (through the forwarder); TMPDIR points into the state dir. The process gets
   * SIGTERM/SIGINT/SIGHUP directly: its own handlers decide its grace. One that dies of such a signal
   * without handling it is reported as exit code 1 (nsenter, which waits for it on the host side,
   * ignores them).
   */
  enter(options: StartOptions): StartOptions;
  /** Runs a short command inside (ip, mount, ...); killed with its nsenter on timeout. */
  run(command: string, args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** One connection to a TCP address as seen from inside. */
  dial: Dial;
  /** Reach a TCP address inside the sandbox from the host: 127.0.0.1:hostPort (forward.ts). */
  forward(target: ForwardTarget, hostPort?: number): Promise<Forward>;
  /** Kills everything inside (the kernel removes namespaces, veths, mounts), removes dir. Idempotent. */
  stop(): Promise<void>;
}

export class SandboxUnavailableError extends Error {
  constructor(
    readonly reason: string,
    readonly fix: string,
  ) {
    super(`the cluster sandbox cannot be made here: ${reason}\n  ${fix}`);
    this.name = 'SandboxUnavailableError';
  }
}

// ---------------------------------------------------------------------------------------------------
// The programs, and whether the machine lets us make the namespaces.

interface Tools {
  setpriv: string;
  unshare: string;
  nsenter: string;
  ip: string;
  mount: string;
  env: string;
  bash: string;
}

function findTools(): Tools {
  return {
    setpriv: findSystemTool('setpriv'),
    unshare: findSystemTool('unshare'),
    nsenter: findSystemTool('nsenter'),
    ip: findSystemTool('ip'),
    mount: findSystemTool('mount'),
    env: findSystemTool('env'),
    bash: findSystemTool('bash'),
  };
}

function currentPrivilege(): Privilege {
  return process.geteuid?.() === 0 ? 'root' : 'rootless';
}

function unshareFlags(privilege: Privilege): string[] {
  return [
    ...(privilege === 'rootless' ? ['--user', '--map-root-user'] : []),
    '--net',
    '--mount',
    '--pid',
    '--fork',
    '--kill-child',
    // /proc of the new PID namespace, so PIDs read inside (a node's children) mean the right process.
    '--mount-proc',
    '--propagation',
    'private',
  ];
}

/** The kernel settings that decide whether an unprivileged user may make user namespaces. */
export const userNamespaceSysctls = {
  'kernel.unprivileged_userns_clone': '/proc/sys/kernel/unprivileged_userns_clone',
  'user.max_user_namespaces': '/proc/sys/user/max_user_namespaces',
  'kernel.apparmor_restrict_unprivileged_userns': '/proc/sys/kernel/apparmor_restrict_unprivileged_userns',
} as const;

type Sysctls = Partial<Record<keyof typeof userNamespaceSysctls, string>>;

function readSysctls(): Sysctls {
  const values: Sysctls = {};
  for (const [name, file] of Object.entries(userNamespaceSysctls) as Array<[keyof typeof userNamespaceSysctls, string]>) {
    try {
      values[name] = readFileSync(file, 'utf8').trim();
    } catch {
      // not on this kernel
    }
  }
  return values;
}

/** Why making the namespaces failed, and what to do about it, from what the machine says. */
export function explainSandboxFailure(input: { privilege: Privilege; stderr: string; sysctls: Sysctls }): { reason: string; fix: string } {
  const said = input.stderr.trim().split('\n')[0] ?? '';
  if (input.privilege === 'root') {
    return {
      reason: `unshare failed as root (${said || 'no message'}): this process lacks CAP_SYS_ADMIN or CAP_NET_ADMIN, as in an unprivileged container`,
      fix: 'run on a VM or a machine of your own, or in a container started with --privileged',
    };
  }
  const { sysctls } = input;
  if (sysctls['kernel.unprivileged_userns_clone'] === '0') {
    return {
      reason: 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)',
      fix: 'enable them with `sudo sysctl -w kernel.unprivileged_userns_clone=1` (keep it in /etc/sysctl.d/), or run as root',
    };
  }
  if (sysctls['user.max_user_namespaces'] === '0') {
    return {
      reason: 'user namespaces are disabled (user.max_user_namespaces = 0)',
      fix: 'enable them with `sudo sysctl -w user.max_user_namespaces=15000` (keep it in /etc/sysctl.d/), or run as root',
    };
  }
  if (sysctls['kernel.apparmor_restrict_unprivileged_userns'] === '1') {
    return {
      reason: 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)',
      fix: 'allow them with `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile granting userns to node), or run as root',
    };
  }
  return {
    reason: `unshare --user failed (${said || 'no message'})`,
    fix: 'run as root, or allow unprivileged user namespaces on this machine',
  };
}

let probed: Promise<SandboxSupport> | undefined;

/** Whether a sandbox can be made here, and with which privilege; probed once per process by making one. */
export function sandboxSupport(): Promise<SandboxSupport> {
  probed ??= (async (): Promise<SandboxSupport> => {
    const privilege = currentPrivilege();
    let tools: Tools;
    try {
      tools = findTools();
    } catch (err) {
      if (err instanceof MissingToolError) return { available: false, reason: `${err.tool} is not installed`, fix: err.installCommand };
      throw err;
    }
    const env = await runCommand(tools.env, ['--ignore-signal=TERM', 'true'], { allowFailure: true, timeoutMs: 5_000 });
    if (env.code !== 0) {
      return { available: false, reason: `${tools.env} has no --ignore-signal (GNU coreutils 8.31 or newer is needed)`, fix: 'apt-get install -y coreutils' };
    }
    const made = await runCommand(
      tools.setpriv,
      ['--pdeathsig', 'SIGKILL', '--', tools.unshare, ...unshareFlags(privilege), tools.ip, 'link', 'add', 'promsnap0', 'type', 'bridge'],
      { allowFailure: true, timeoutMs: 10_000 },
    );
    if (made.code === 0) return { available: true, privilege };
    return { available: false, ...explainSandboxFailure({ privilege, stderr: made.stderr, sysctls: readSysctls() }) };
  })();
  return probed;
}

// ---------------------------------------------------------------------------------------------------
// What /proc says.

/** Field 22 of /proc/PID/stat: tells a process from a later one that got the same PID. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return children;
}

/** A zombie has released its network and mount namespaces; its PID namespace goes when it is reaped. */
function isZombie(pid: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

/** Live processes (zombies hold no namespace) in any of the namespaces. */
export function processesIn(namespaces: readonly string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || isZombie(entry)) continue;
    for (const kind of ['pid', 'net', 'mnt']) {
      try {
        if (namespaces.includes(readlinkSync(`/proc/${entry}/ns/${kind}`))) {
          found.push(Number(entry));
          break;
        }
      } catch {
        // gone, or not ours to read
      }
    }
  }
  return found;
}

interface MountEntry {
  point: string;
  fstype: string;
  /** The mounted root within its filesystem: 'net:[4026532281]' for a namespace kept by a bind mount. */
  root: string;
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** /proc/PID/mountinfo as mount points, file system types and roots. */
export function readMounts(pid: number | 'self' = 'self'): MountEntry[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split(' ');
      const separator = fields.indexOf('-');
      return { point: unescapeMountPath(fields[4] ?? ''), root: unescapeMountPath(fields[3] ?? ''), fstype: fields[separator + 1] ?? '' };
    });
}

function isUnder(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : parent + '/');
}

/** What a sandbox left on the machine: processes in its namespaces, host mounts of or under it, its dir. */
export function sandboxLeftovers(traces: SandboxTraces): { processes: number[]; mounts: string[]; dir: boolean } {
  const namespaces = Object.values(traces.namespaces);
  const mounts = readMounts()
    .filter((m) => isUnder(m.point, traces.dir) || namespaces.includes(m.root))
    .map((m) => `${m.point} (${m.fstype})`);
  return { processes: processesIn(namespaces), mounts, dir: existsSync(traces.dir) };
}

/** Network interfaces of the host's network namespace, by name and kind (veth, bridge, ...). */
export async function hostLinks(): Promise<Array<{ name: string; kind: string }>> {
  const result = await runCommand(findSystemTool('ip'), ['-j', '-d', 'link', 'show']);
  const links = JSON.parse(result.stdout) as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>;
  return links.map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind ?? '' }));
}

// ---------------------------------------------------------------------------------------------------
// The state dir's lock: which run owns it, so a dir left by a dead run can be told from one in use.

interface Lock {
  id: string;
  harness: { pid: number; startTime: string };
  init?: { pid: number; startTime: string };
  namespaces?: string[];
}

const lockName = 'sandbox.json';

async function readLock(dir: string): Promise<Lock | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, lockName), 'utf8')) as Lock;
  } catch {
    return undefined;
  }
}

/** Makes dir for a new sandbox; a dir left by a dead run is removed first, one in use is refused. */
async function claimDir(dir: string, lock: Lock): Promise<void> {
  if (existsSync(dir)) {
    const previous = await readLock(dir);
    if (!previous) throw new Error(`${dir} exists and is not a sandbox's state dir: give a path that does not exist`);
    if (processStartTime(previous.harness.pid) === previous.harness.startTime) {
      throw new Error(`${dir} is in use by the sandbox of process ${previous.harness.pid}`);
    }
    // Left by a run that died: its reaper may still be at work; its sandbox is gone or going.
    const namespaces = previous.namespaces ?? [];
    if (previous.init && processStartTime(previous.init.pid) === previous.init.startTime) process.kill(previous.init.pid, 'SIGKILL');
    await waitFor(() => processesIn(namespaces).length === 0, { what: `the processes of the dead sandbox in ${dir} to end`, timeoutMs: 30_000 });
    const mounts = readMounts().filter((m) => isUnder(m.point, dir));
    if (mounts.length > 0) throw new Error(`${dir} has mounts under it (${mounts.map((m) => m.point).join(', ')}): not removed`);
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(path.dirname(dir), { recursive: true });
  await mkdir(dir, { mode: 0o700 });
  await writeLock(dir, lock);
}

async function writeLock(dir: string, lock: Lock): Promise<void> {
  await writeFile(path.join(dir, lockName), JSON.stringify(lock) + '\n', { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------------

const reaperScript = fileURLToPath(new URL('./sandbox-reaper.ts', import.meta.url));

/** Arguments that let this Node run a .ts file by itself (type stripping is on by default from 22.18). */
export function nodeScriptArgs(script: string, ...args: string[]): string[] {
  return [...(process.features.typescript ? [] : ['--experimental-strip-types']), script, ...args];
}

/** The reaper outlives this process by design: a session of its own, stdin the pipe whose end says "now". */
function spawnReaper(dir: string, id: string): ChildProcess {
  const reaper = spawn(process.execPath, nodeScriptArgs(reaperScript, dir, id), { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  reaper.unref();
  (reaper.stdin as net.Socket | null)?.unref();
  reaper.on('error', () => undefined);
  reaper.stdin?.on('error', () => undefined);
  return reaper;
}

const initScript = "trap '' TERM INT HUP; while :; do sleep infinity & wait; done";

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const support = await sandboxSupport();
  if (!support.available) throw new SandboxUnavailableError(support.reason, support.fix);
  const privilege = support.privilege;
  const tools = findTools();
  const dir = path.resolve(options.dir);
  const network = options.network ?? defaultSandboxNetwork;
  const writable = (options.writable ?? []).map((w) => path.resolve(w));
  const socketPath = path.join(dir, 'forward.sock');
  // A unix socket's path is limited to 107 bytes; the node puts more sockets in the same dir.
  if (Buffer.byteLength(socketPath) > 80) throw new Error(`sandbox dir ${dir} is too long for unix sockets under it: use a shorter path`);

  const id = randomUUID();
  const lock: Lock = { id, harness: { pid: process.pid, startTime: processStartTime(process.pid)! } };
  await claimDir(dir, lock);
  const reaper = spawnReaper(dir, id);
  for (const w of writable) await mkdir(w, { recursive: true });

  let unshare: ManagedProcess | undefined;
  let init: { pid: number; startTime: string } | undefined;
  let namespaces: SandboxTraces['namespaces'] = { pid: '', net: '', mnt: '' };
  let forwarder: Promise<ManagedProcess> | undefined;
  const forwards = new Set<Forward>();
  let stopping: Promise<void> | undefined;
  let removeCleanup: () => void = () => undefined;

  const killInit = () => {
    if (init && processStartTime(init.pid) === init.startTime) {
      try {
        process.kill(init.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  };

  const enterArgs = (cwd: string | undefined): string[] => [
    `--target=${init!.pid}`,
    ...(privilege === 'rootless' ? ['--user', '--preserve-credentials'] : []),
    '--net',
    '--mount',
    '--pid',
    `--wd=${cwd ?? dir}`,
  ];

  const run = (command: string, args: string[], runOptions: CommandOptions = {}) =>
    // setpriv --pdeathsig: a command whose nsenter is killed (a timeout) dies with it.
    runCommand(tools.nsenter, [...enterArgs(runOptions.cwd), '--', tools.setpriv, '--pdeathsig', 'SIGKILL', '--', command, ...args], runOptions);

  const ensureForwarder = () => {
    forwarder ??= startProcess(
      enter({
        name: 'sandbox forwarder',
        command: process.execPath,
        args: nodeScriptArgs(forwarderScript, socketPath),
        readyCheck: { what: `the sandbox's forwarder at ${socketPath}`, check: () => canConnect(socketPath) },
      }),
    );
    return forwarder;
  };

  const dial: Dial = async (target) => {
    await ensureForwarder();
    return dialVia(socketPath)(target);
  };

  function enter(startOptions: StartOptions): StartOptions {
    if (!init) throw new Error('the sandbox is not started');
    const { command, args = [], uid, gid, cwd, env, readyUrl, readyCheck, ...rest } = startOptions;
    if (privilege === 'rootless' && ((uid ?? 0) !== 0 || (gid ?? 0) !== 0)) {
      // One user is mapped (no subordinate ids without newuidmap): only the sandbox's root exists inside.
      throw new Error(`${startOptions.name}: a rootless sandbox cannot switch to uid ${uid ?? 0}, gid ${gid ?? uid ?? 0}: run it as the sandbox's root`);
    }
    const asUser = uid === undefined && gid === undefined ? [] : [tools.setpriv, `--reuid=${uid ?? 0}`, `--regid=${gid ?? uid ?? 0}`, '--clear-groups'];
    const checks = [
      ...(readyUrl ? [{ what: `${startOptions.name} at ${readyUrl} (inside the sandbox)`, check: () => getOk(readyUrl, { dial }) }] : []),
      ...(readyCheck ? [readyCheck] : []),
    ];
    return {
      ...rest,
      command: tools.env,
      // nsenter waits for the process on the host side; signals to the process group are for the
      // process inside, whose own handlers decide how long it takes: nsenter ignores them, the
      // process gets the default dispositions back.
      args: ['--ignore-signal=TERM,INT,HUP', tools.nsenter, ...enterArgs(cwd), '--', tools.env, '--default-signal=TERM,INT,HUP', ...asUser, command, ...args],
      env: { ...(env ?? process.env), TMPDIR: path.join(dir, 'tmp') },
      ...(checks.length === 0
        ? {}
        : {
            readyCheck: {
              what: checks.map((c) => c.what).join(', then '),
              check: async () => {
                for (const c of checks) if (!(await c.check())) return false;
                return true;
              },
            },
          }),
    };
  }

  const stop = () => {
    stopping ??= (async () => {
      await Promise.all([...forwards].map((f) => f.close()));
      killInit();
      if (unshare?.alive) {
        // unshare exits as soon as its child, the init, is gone; SIGKILL if it has not.
        const gone = await Promise.race([unshare.exited.then(() => true), sleep(2_000).then(() => false)]);
        if (!gone) await unshare.stop('SIGKILL', 1_000);
      }
      const traces = Object.values(namespaces).filter((n) => n !== '');
      let failure: Error | undefined;
      try {
        // nsenter processes of entered commands hold the namespaces until their child is reaped.
        await waitFor(() => processesIn(traces).length === 0, { what: 'every process of the sandbox to end', timeoutMs: 10_000, intervalMs: 20 });
        const mounts = readMounts().filter((m) => isUnder(m.point, dir));
        if (mounts.length > 0) throw new Error(`mounts under ${dir} in the host's view: ${mounts.map((m) => m.point).join(', ')}; not removed`);
        await rm(dir, { recursive: true, force: true });
      } catch (err) {
        failure = err as Error;
      }
      removeCleanup();
      // Ending the pipe lets the reaper go (it finds the dir gone), or do what failed here.
      reaper.stdin?.end();
      if (failure) throw failure;
    })();
    return stopping;
  };

  try {
    unshare = await startProcess({
      name: 'sandbox',
      command: tools.setpriv,
      args: ['--pdeathsig', 'SIGKILL', '--', tools.unshare, ...unshareFlags(privilege), tools.bash, '-c', initScript, 'promsnap-sandbox-init'],
    });
    const unsharePid = unshare.pid;
    const initPid = await unshare.waitUntil(
      () => {
        // The init once unshare's child has exec'd bash: the namespaces and /proc are made by then.
        const child = childrenOf(unsharePid)[0];
        if (child === undefined) return undefined;
        return readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'bash' ? child : undefined;
      },
      { what: "the sandbox's init to start", timeoutMs: 10_000, intervalMs: 10, before: 'its init started' },
    );
    init = { pid: initPid, startTime: processStartTime(initPid)! };
    namespaces = {
      pid: readlinkSync(`/proc/${initPid}/ns/pid`),
      net: readlinkSync(`/proc/${initPid}/ns/net`),
      mnt: readlinkSync(`/proc/${initPid}/ns/mnt`),
    };
    await writeLock(dir, { ...lock, init, namespaces: Object.values(namespaces) });
    removeCleanup = onCleanup(killInit);

    await setUpNetwork(run, tools.ip, network);
    await setUpMounts(run, tools.mount, readMounts(initPid), [dir, ...writable]);
    await mkdir(path.join(dir, 'tmp'), { mode: 0o700 });
    // Every cluster reaches in (readiness checks, the API server's forward): start it now, in parallel
    // with what the caller starts next; a failure is reported to the first dial or forward.
    ensureForwarder().catch(() => undefined);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  const sandboxProcess = unshare;
  return {
    privilege,
    dir,
    network,
    traces: { dir, initPid: init.pid, namespaces },
    get alive() {
      return sandboxProcess.alive && stopping === undefined;
    },
    enter,
    run,
    dial,
    async forward(target, hostPort) {
      await ensureForwarder();
      const forward = await listenForward(dialVia(socketPath), target, hostPort);
      forwards.add(forward);
      return forward;
    },
    stop,
  };
}

type Run = (command: string, args: string[], options?: CommandOptions) => Promise<CommandResult>;

async function setUpNetwork(run: Run, ip: string, network: SandboxNetwork): Promise<void> {
  const commands = [
    'link set lo up',
    `link add ${network.bridge} type bridge`,
    `addr add ${network.address} dev ${network.bridge}`,
    `link set ${network.bridge} up`,
    ...network.localRoutes.map((range) => `route add local ${range} dev lo`),
  ];
  await run(ip, ['-batch', '-'], { input: commands.join('\n') + '\n', timeoutMs: 10_000 });
}

/**
 * The state dir and the writable paths become mounts of their own (read-write), then every other mount
 * the sandbox inherited from the host is remounted read-only; /proc (the sandbox's own) stays as it is,
 * and /dev/shm becomes a tmpfs of the sandbox. FUSE and autofs mounts are left alone: remounting them
 * is refused, and nothing of ours writes there.
 */
async function setUpMounts(run: Run, mount: string, inherited: MountEntry[], writable: string[]): Promise<void> {
  for (const w of writable) await run(mount, ['--bind', w, w], { timeoutMs: 10_000 });
  const points = [...new Set(inherited.filter((m) => !isUnder(m.point, '/proc') && !/^(fuse|autofs)/.test(m.fstype)).map((m) => m.point))];
  for (const point of points) {
    if (writable.some((w) => isUnder(point, w))) continue;
    await run(mount, ['-o', 'remount,bind,ro', point], { timeoutMs: 10_000 });
  }
  await run(mount, ['-t', 'tmpfs', '-o', 'mode=1777,size=64m', 'promsnap-shm', '/dev/shm'], { timeoutMs: 10_000 });
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: socketPath });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
