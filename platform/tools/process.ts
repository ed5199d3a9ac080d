// The external programs we run (Prometheus, MinIO, etcd, kube-apiserver, Knative's processes, the
// functions): start one in a process group of its own, wait until it is healthy (a wait that ends the
// moment it dies), stop it with an escalation policy, and make sure none outlives this process. Every
// live process is kept in one registry: when this process exits, or is interrupted (SIGINT, SIGTERM,
// SIGHUP) with nobody else handling the signal, every group is stopped and every registered cleanup
// runs, so an interrupted `npm test` or `npm start` leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { httpOk, waitFor, type WaitOptions } from './wait.js';

export interface StartOptions {
  name: string;
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** URL that answers 2xx once the process is ready. */
  readyUrl?: string;
  /** Any other readiness check (a log line seen, a probe with headers); waited for after readyUrl. */
  readyCheck?: { what: string; check: () => Promise<boolean> | boolean };
  readyTimeoutMs?: number;
  /** Called with every line the process prints (stdout and stderr). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Called as soon as the process runs, before it is ready: a caller that may stop it meanwhile holds it. */
  onSpawn?: (process: ManagedProcess) => void;
  uid?: number;
  gid?: number;
}

/** Signals sent in turn, each followed by a wait for the process to exit; SIGKILL ends what is left. */
export interface StopPolicy {
  steps: ReadonlyArray<{ signal: NodeJS.Signals; waitMs: number }>;
}

/** SIGTERM, then SIGKILL after graceMs: what a kubelet does with a container. */
export function terminate(graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): StopPolicy {
  return { steps: [{ signal, waitMs: graceMs }] };
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** False once the process has exited. */
  readonly alive: boolean;
  /** The last lines the process printed, for error messages. */
  recentOutput(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Sends a signal to the process group and waits; escalates to SIGKILL after graceMs. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
  /** Stops the process group by the policy's steps, then SIGKILL. */
  stopWith(policy: StopPolicy): Promise<number | string>;
  /**
   * Polls check until it holds; fails at once, with the process's last lines, if the process exits
   * first ("NAME exited (CODE) before " + options.before, default "it was ready").
   */
  waitUntil<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: Omit<WaitOptions, 'signal'> & { before?: string }): Promise<T>;
}

// ---------------------------------------------------------------------------------------------------
// The registry: every process started here and still running, and cleanups for what is not a process
// (network namespaces, mounts). Hooks are installed with the first process.

const live = new Set<ManagedProcess>();
const cleanups = new Set<() => void>();
let hooksInstalled = false;

const signalNumbers: Record<'SIGHUP' | 'SIGINT' | 'SIGTERM', number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** Sends a signal to a process group; false when the group is gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process exists (one we may not signal counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function runCleanups(): void {
  for (const cleanup of [...cleanups].reverse()) {
    try {
      cleanup();
    } catch {
      // best effort: the process is going away
    }
  }
  cleanups.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Last resort, synchronous: whatever is still running when this process exits is killed.
  process.on('exit', () => {
    for (const child of live) signalGroup(child.pid, 'SIGKILL');
    runCleanups();
  });
  for (const signal of Object.keys(signalNumbers) as Array<keyof typeof signalNumbers>) {
    const onSignal = () => {
      // Someone else handles this signal (npm start's graceful stop, a test runner): they decide when
      // to exit, and the exit hook above catches anything they leave.
      if (process.listenerCount(signal) > 1) return;
      void stopEverything(terminate(3_000)).finally(() => process.exit(128 + signalNumbers[signal]));
    };
    process.on(signal, onSignal);
  }
}

/** Stops every live process of this registry (in parallel) and runs the cleanups. */
export async function stopEverything(policy: StopPolicy = terminate()): Promise<void> {
  await stopAll([...live], policy);
  runCleanups();
}

/**
 * Registers a synchronous cleanup (deleting a network namespace, unmounting) run when this process
 * exits or is interrupted, if it has not been removed by then. Returns the function that removes it.
 */
export function onCleanup(cleanup: () => void): () => void {
  installHooks();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Stops the processes in parallel, each by the policy. */
export async function stopAll(processes: Iterable<ManagedProcess>, policy: StopPolicy): Promise<void> {
  await Promise.all([...processes].map((p) => p.stopWith(policy)));
}

/**
 * Stops process groups this process did not start (left by a runner that was killed outright): the
 * policy's signals to every group, then SIGKILL.
 */
export async function stopGroups(pids: number[], policy: StopPolicy = terminate()): Promise<void> {
  for (const step of policy.steps) {
    for (const pid of pids) signalGroup(pid, step.signal);
    await waitFor(() => !pids.some(isAlive), { what: 'the processes to exit', timeoutMs: step.waitMs, intervalMs: 100 }).catch(() => undefined);
  }
  for (const pid of pids) signalGroup(pid, 'SIGKILL');
}

// ---------------------------------------------------------------------------------------------------

export async function startProcess(options: StartOptions): Promise<ManagedProcess> {
  installHooks();
  const child = spawn(options.command, options.args ?? [], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a stop reaches grandchildren too, and Ctrl-C in a terminal reaches us first.
    detached: true,
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  const lines: string[] = [];
  const remember = (stream: 'stdout' | 'stderr') => {
    let partial = '';
    return (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > 200) lines.shift();
        options.onLine?.(line, stream);
      }
    };
  };
  child.stdout?.on('data', remember('stdout'));
  child.stderr?.on('data', remember('stderr'));

  let alive = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned) throw new Error(`${options.name}: could not start ${options.command}: ${spawned.message}`);

  const recentOutput = () => lines.slice(-40).join('\n');
  const stopWith = async (policy: StopPolicy) => {
    if (!alive) return exited;
    for (const step of policy.steps) {
      signalGroup(child.pid!, step.signal);
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        exited.then(() => 'exited' as const),
        new Promise<'waited'>((r) => (timer = setTimeout(() => r('waited'), step.waitMs))),
      ]);
      clearTimeout(timer);
      if (outcome === 'exited') break;
    }
    if (alive) signalGroup(child.pid!, 'SIGKILL');
    const code = await exited;
    // Grandchildren that outlived their parent still belong to the group.
    signalGroup(child.pid!, 'SIGKILL');
    return code;
  };

  const managed: ManagedProcess = {
    name: options.name,
    child,
    pid: child.pid!,
    get alive() {
      return alive;
    },
    recentOutput,
    exited,
    stop: (signal = 'SIGTERM', graceMs = 10_000) => stopWith(terminate(graceMs, signal)),
    stopWith,
    async waitUntil(check, waitOptions) {
      const stopPolling = new AbortController();
      const { before = 'it was ready', ...rest } = waitOptions;
      void exited.then((code) => stopPolling.abort(new Error(`${options.name} exited (${code}) before ${before}:\n${recentOutput()}`)));
      try {
        return await waitFor(check, { ...rest, signal: stopPolling.signal });
      } catch (err) {
        // A timeout: what the process printed is what explains it.
        if (alive && err instanceof Error) err.message += `\nlast output of ${options.name}:\n${recentOutput()}`;
        throw err;
      }
    },
  };
  live.add(managed);
  void exited.then(() => live.delete(managed));
  options.onSpawn?.(managed);

  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  try {
    if (options.readyUrl) {
      const readyUrl = options.readyUrl;
      await managed.waitUntil(() => httpOk(readyUrl), { what: `${options.name} at ${readyUrl}`, timeoutMs: readyTimeoutMs });
    }
    if (options.readyCheck) {
      await managed.waitUntil(options.readyCheck.check, { what: options.readyCheck.what, timeoutMs: readyTimeoutMs });
    }
  } catch (err) {
    await managed.stop('SIGKILL', 1_000);
    throw err;
  }
  return managed;
}
