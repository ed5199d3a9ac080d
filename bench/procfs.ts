// What the kernel counts for a process, read from /proc.
//
// Peak resident memory: VmHWM in /proc/<pid>/status is the
// high-water mark of its RSS, exact whatever happens between two looks (polling VmRSS would miss
// short peaks). Writing 5 to /proc/<pid>/clear_refs (Linux 4.0+) lowers the mark to the current RSS,
// so a peak can be taken over one piece of work in a process that did other work before.
import { readFile, writeFile } from 'node:fs/promises';
import { runCommand } from '../platform/tools/command.js';

async function statusLine(pid: number | 'self', field: string): Promise<string> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(.+)$`, 'm').exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no ${field} line`);
  return match[1]!;
}

async function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const line = await statusLine(pid, field);
  const kB = /^(\d+) kB$/.exec(line);
  if (!kB) throw new Error(`/proc/${pid}/status: ${field} is not in kB: ${line}`);
  return Number(kB[1]) * 1024;
}

/** Highest RSS (bytes) of a live process since it started or since resetPeakRss. */
export function peakRssBytes(pid: number): Promise<number> {
  return statusField(pid, 'VmHWM');
}

export function rssBytes(pid: number): Promise<number> {
  return statusField(pid, 'VmRSS');
}

export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/**
 * GNU time, which reports a command's peak RSS from wait4's rusage once it has exited: the way to
 * measure short-lived commands (curl, mc) whose /proc entry is gone by then. Undefined when absent.
 */
export async function gnuTime(): Promise<string | undefined> {
  const candidate = '/usr/bin/time';
  const result = await runCommand(candidate, ['-f', '%M', 'true'], { allowFailure: true }).catch(() => undefined);
  return result?.code === 0 ? candidate : undefined;
}

/** Reads a CPU list as the kernel and taskset print it (`0-3,6,8-9`). */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!range) throw new Error(`not a CPU list: ${JSON.stringify(text)}`);
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The CPUs this process may run on (a container may be given fewer than the host has). */
export async function allowedCpus(): Promise<number[]> {
  return parseCpuList(await statusLine('self', 'Cpus_allowed_list'));
}

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat, 100 on every Linux architecture Node runs on. */
const clockTicksPerSecond = 100;

/** CPU time (ms, user + system, all threads) a live process has used so far. */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicksPerSecond;
}
