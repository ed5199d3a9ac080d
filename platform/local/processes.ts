// Child processes the local runner and the tests start: real servers (Prometheus, MinIO, the
// functions), each in its own process group so stopping one stops everything it spawned.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export class MissingToolError extends Error {
  constructor(
    readonly tool: string,
    readonly installCommand: string,
  ) {
    super(`${tool} is not installed (not found on PATH). Install it with:\n  ${installCommand}`);
    this.name = 'MissingToolError';
  }
}

/** How each external tool is installed (run from the repository root): provision.sh, as npm's scripts do. */
export const installCommands: Record<string, string> = {
  prometheus: 'bash platform/tools/provision.sh prometheus',
  promtool: 'bash platform/tools/provision.sh prometheus',
  minio: 'bash platform/tools/provision.sh minio',
  mc: 'bash platform/tools/provision.sh mc',
  hey: 'bash platform/tools/provision.sh hey',
  etcd: 'bash platform/tools/provision.sh etcd',
  'kube-apiserver': 'bash platform/tools/provision.sh kube-apiserver',
  kubectl: 'bash platform/tools/provision.sh kubectl',
  skaffold: 'bash platform/tools/provision.sh skaffold',
};

/** Absolute path of an executable on PATH, or a MissingToolError that says how to install it. */
export function findTool(tool: string, searchPath = process.env['PATH'] ?? ''): string {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  throw new MissingToolError(tool, installCommands[tool] ?? `install ${tool} and put it on PATH`);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether something already listens on host:port (a port taken is reported, not crashed on). */
export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, host, () => server.close(() => resolve(false)));
  });
}

export interface WaitOptions {
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Stops the polling early (for example when the process being waited for has exited). */
  signal?: AbortSignal;
}

/** Polls until check() returns a value other than undefined/false; fails with what it waited for. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    if (options.signal?.aborted) throw new Error(`stopped waiting for ${options.what}`);
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${options.what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/** True when GET url answers 2xx. */
export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** URL that answers 2xx once the process is ready. */
  readyUrl?: string;
  readyTimeoutMs?: number;
  /** Called with every line the process prints (stdout and stderr). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  uid?: number;
  gid?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last lines the process printed, for error messages. */
  recentOutput(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Sends a signal to the process group and waits; escalates to SIGKILL after graceMs. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

/**
 * SIGKILLs the process groups of `children()` if this process exits without having stopped them (an
 * uncaught error, process.exit): each runs in its own group, which nothing else would signal. Returns
 * the function that removes the hook once a stop has ended them itself.
 */
export function killGroupsOnExit(children: () => Iterable<ManagedProcess>): () => void {
  const kill = () => {
    for (const child of children()) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', kill);
  return () => process.removeListener('exit', kill);
}

export async function startProcess(options: StartOptions): Promise<ManagedProcess> {
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

  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned) throw new Error(`${options.name}: could not start ${options.command}: ${spawned.message}`);

  const managed: ManagedProcess = {
    name: options.name,
    child,
    pid: child.pid!,
    recentOutput: () => lines.slice(-40).join('\n'),
    exited,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      const signalGroup = (sig: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          // already gone
        }
      };
      signalGroup(signal);
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      // Grandchildren that outlived their parent still belong to the group.
      signalGroup('SIGKILL');
      return code;
    },
  };

  if (options.readyUrl) {
    const readyUrl = options.readyUrl;
    const stopPolling = new AbortController();
    const earlyExit = exited.then((code) => {
      stopPolling.abort();
      throw new Error(`${options.name} exited (${code}) before it was ready:\n${managed.recentOutput()}`);
    });
    try {
      await Promise.race([
        waitFor(() => httpOk(readyUrl), {
          what: `${options.name} at ${readyUrl}`,
          timeoutMs: options.readyTimeoutMs ?? 30_000,
          signal: stopPolling.signal,
        }),
        earlyExit,
      ]);
    } catch (err) {
      await managed.stop('SIGKILL', 1_000);
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(message.includes(managed.recentOutput()) ? message : `${message}\n${managed.recentOutput()}`);
    } finally {
      earlyExit.catch(() => undefined);
    }
  }
  return managed;
}
