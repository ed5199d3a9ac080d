// Test support for the local runner's tests: start `platform/local/main.ts` as a real process, read
// its output line by line, and list the process tree it started (from /proc).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const mainScript = path.join(repoRoot, 'platform/local/main.ts');

export interface RunnerProcess {
  child: ChildProcess;
  /** Every line printed so far (stdout and stderr). */
  lines: string[];
  output(): string;
  /** Resolves with the first line matching, or rejects when the process exits or time runs out. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startRunner(args: string[], env: NodeJS.ProcessEnv = process.env): RunnerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', mainScript, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      for (const wake of [...waiters]) wake();
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': by then the last output has been read.
    child.once('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
      for (const wake of [...waiters]) wake();
    }),
  );
  const output = () => lines.join('\n');
  return {
    child,
    lines,
    output,
    exited,
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${output()}`)), timeoutMs);
        const finish = (err?: Error, match?: RegExpExecArray) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve(match!);
        };
        const check = () => {
          for (const line of lines) {
            const match = pattern.exec(line);
            if (match) return finish(undefined, match);
          }
          if (done) finish(new Error(`runner exited before printing a line matching ${pattern}; output:\n${output()}`));
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Every descendant of pid (children, grandchildren, ...) alive now, read from /proc. */
export function descendants(pid: number): ProcessId[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces), which ends at the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while being read
    }
  }
  const out: ProcessId[] = [];
  const visit = (p: number) => {
    for (const child of children.get(p) ?? []) {
      const id = identify(child);
      if (id) out.push(id);
      visit(child);
    }
  };
  visit(pid);
  return out;
}

/** A process as /proc knows it: pid and start time, so a pid the kernel hands out again is not taken for it. */
export interface ProcessId {
  pid: number;
  startTime: string;
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), which ends at the last ')': state is the first.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** pid and start time of a running process (undefined once it is gone). */
export function identify(pid: number): ProcessId | undefined {
  const fields = statFields(pid);
  // starttime is field 22 of /proc/PID/stat, the 20th after the command name.
  return fields ? { pid, startTime: fields[19]! } : undefined;
}

/** Whether that very process still exists and is not a zombie waiting to be reaped. */
export function alive(process: ProcessId): boolean {
  const fields = statFields(process.pid);
  return fields !== undefined && fields[19] === process.startTime && fields[0] !== 'Z';
}

/** The command line of a process, for messages. */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}
