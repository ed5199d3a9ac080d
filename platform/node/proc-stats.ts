// What the kernel says a container uses, from /proc (the cgroups here are v1 and shared with the host's
// other tenants, and /proc works rootless too): a container is its process group (containers.ts starts
// each as one), its CPU the user and system time of the group's processes, its memory their resident set.
// A process that has exited no longer counts, so the CPU counter of a container whose children come and go
// can step back: cAdvisor on cgroups does not have that flaw; README says so.
import { readdir, readFile } from 'node:fs/promises';
import { runCommand } from '../tools/command.js';
import { findSystemTool } from '../tools/find.js';

export interface ProcStat {
  pid: number;
  pgid: number;
  /** Clock ticks. */
  utime: number;
  stime: number;
  /** Resident pages. */
  rss: number;
}

/** Fields of /proc/PID/stat (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15, rss 24.
  const at = (field: number) => Number(fields[field - 3]);
  if (!Number.isFinite(pid) || !Number.isFinite(at(5))) return undefined;
  return { pid, pgid: at(5), utime: at(14), stime: at(15), rss: at(24) };
}

export interface GroupUsage {
  userSeconds: number;
  systemSeconds: number;
  rssBytes: number;
  processes: number;
}

let units: Promise<{ ticks: number; pageSize: number }> | undefined;

/** CLK_TCK and the page size, asked once (getconf; 100 and 4096 where it cannot say). */
export function kernelUnits(): Promise<{ ticks: number; pageSize: number }> {
  units ??= (async () => {
    try {
      const getconf = findSystemTool('getconf');
      const ticks = Number((await runCommand(getconf, ['CLK_TCK'])).stdout.trim());
      const pageSize = Number((await runCommand(getconf, ['PAGESIZE'])).stdout.trim());
      return { ticks: ticks > 0 ? ticks : 100, pageSize: pageSize > 0 ? pageSize : 4096 };
    } catch {
      return { ticks: 100, pageSize: 4096 };
    }
  })();
  return units;
}

/** Usage of each asked-for process group, from one pass over /proc. */
export async function groupUsage(groups: ReadonlySet<number>): Promise<Map<number, GroupUsage>> {
  const { ticks, pageSize } = await kernelUnits();
  const usage = new Map<number, GroupUsage>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = parseProcStat(await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => ''));
    if (!stat || !groups.has(stat.pgid)) continue;
    const sum = usage.get(stat.pgid) ?? { userSeconds: 0, systemSeconds: 0, rssBytes: 0, processes: 0 };
    sum.userSeconds += stat.utime / ticks;
    sum.systemSeconds += stat.stime / ticks;
    sum.rssBytes += stat.rss * pageSize;
    sum.processes++;
    usage.set(stat.pgid, sum);
  }
  return usage;
}
