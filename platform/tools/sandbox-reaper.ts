// The host-side reaper of one sandbox (`node sandbox-reaper.ts DIR ID`), started by sandbox.ts in a
// session of its own with a pipe from the harness as stdin. When that pipe ends (the harness stopped
// the sandbox, exited, or was killed outright), it makes sure the sandbox's first process is dead,
// waits until no process holds the sandbox's namespaces any more (then no mount of the sandbox exists
// either), and removes the state dir, so even a harness killed by SIGKILL leaves nothing behind.
// It deletes only a dir whose lock (sandbox.json) still names its own sandbox ID, and never one that
// has a mount under it in the host's view. Runs with Node's own type stripping: node: modules only.
import { readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';

interface Lock {
  id: string;
  init?: { pid: number; startTime: string };
  namespaces?: string[];
}

const [dir, id] = process.argv.slice(2);
if (!dir || !id) {
  process.stderr.write('usage: sandbox-reaper.ts DIR ID\n');
  process.exit(2);
}

function readLock(): Lock | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir!, 'sandbox.json'), 'utf8')) as Lock;
  } catch {
    return undefined;
  }
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
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

/** Processes (not zombies: those hold no namespace) in any of the given namespaces. */
function holders(namespaces: string[]): number[] {
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

function mountsUnder(root: string): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescape(line.split(' ')[4] ?? ''))
    .filter((point) => point === root || point.startsWith(root + '/'));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function reap(): Promise<number> {
  const lock = readLock();
  if (!lock || lock.id !== id) return 0; // stopped and removed by the harness, or no longer ours
  if (lock.init && startTime(lock.init.pid) === lock.init.startTime) {
    try {
      // The PID namespace's init: the kernel kills every other process inside with it.
      process.kill(lock.init.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 60_000;
  while (lock.namespaces && holders(lock.namespaces).length > 0) {
    if (Date.now() > deadline) {
      process.stderr.write(`sandbox-reaper: processes still hold the sandbox's namespaces; ${dir} kept\n`);
      return 1;
    }
    await sleep(50);
  }
  const mounts = mountsUnder(dir!);
  if (mounts.length > 0) {
    process.stderr.write(`sandbox-reaper: ${dir} kept, mounts under it: ${mounts.join(', ')}\n`);
    return 1;
  }
  if (readLock()?.id !== id) return 0;
  rmSync(dir!, { recursive: true, force: true });
  return 0;
}

// Started in a session of its own, so the harness's Ctrl-C does not reach it; a signal sent to it
// directly means the same as the pipe ending: clean up now.
let reaping: Promise<void> | undefined;
const reapOnce = () => {
  reaping ??= reap().then((code) => process.exit(code));
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, reapOnce);
process.stdin.on('data', () => undefined);
process.stdin.once('close', reapOnce);
