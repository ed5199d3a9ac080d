// A container's process: nsenter into the pod's network, mount and UTS namespaces, chroot into the
// container's root, change to its working directory and user, and exec its argv with exactly its
// environment; setpriv first when allowPrivilegeEscalation is false. The exec chain keeps one pid, so the
// process we spawn is the container's main process. Each is its own process group: SIGTERM goes to the
// main process only (as a runtime signals PID 1), SIGKILL to the whole group, and whatever the main
// process leaves behind is killed when it exits, as a container's PID namespace would.
import { spawn } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { findSystemTool } from '../tools/find.js';
import { signalGroup } from '../tools/process.js';
import type { Launch } from './launch.js';

export interface ContainerExit {
  exitCode: number;
  /** The signal that ended it, as a number (9 for SIGKILL). */
  signal?: number;
  finishedAtMs: number;
}

export interface ContainerProcess {
  readonly pid: number;
  readonly startedAtMs: number;
  readonly exited: Promise<ContainerExit>;
  readonly running: boolean;
  /** SIGTERM (or the image's STOPSIGNAL) to the main process. */
  terminate(signal?: NodeJS.Signals): void;
  /** SIGKILL to every process of the container. */
  kill(): void;
}

export interface StartContainerOptions {
  holderPid: number;
  /** The container's root as nsenter reaches it (/proc/<holder>/root/...). */
  root: string;
  launch: Launch;
  uid: number;
  gid: number;
  /** Whether to switch user at all (a rootless node cannot). */
  switchUser: boolean;
  noNewPrivs: boolean;
  /** File the container's stdout and stderr are appended to. */
  logFile: string;
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

/** The argv that enters the pod and runs the container's command (exported for exec probes and hooks). */
export function enterArgs(options: Omit<StartContainerOptions, 'launch' | 'logFile'> & { cwd: string }, command: string[]): { file: string; args: string[] } {
  const nsenter = [
    findSystemTool('nsenter'),
    '-t',
    String(options.holderPid),
    '-n',
    '-m',
    '-u',
    `--root=${options.root}`,
    `--wdns=${options.cwd}`,
    ...(options.switchUser ? [`--setuid=${options.uid}`, `--setgid=${options.gid}`] : []),
    '--',
    ...command,
  ];
  if (!options.noNewPrivs) return { file: nsenter[0]!, args: nsenter.slice(1) };
  return { file: findSystemTool('setpriv'), args: ['--no-new-privs', '--', ...nsenter] };
}

export async function startContainer(options: StartContainerOptions): Promise<ContainerProcess> {
  await mkdir(path.dirname(options.logFile), { recursive: true });
  const log = await open(options.logFile, 'a');
  const { file, args } = enterArgs({ ...options, cwd: options.launch.cwd }, options.launch.argv);
  const child = spawn(file, args, { env: options.launch.env, stdio: ['ignore', log.fd, log.fd], detached: true });
  const startedAtMs = Date.now();
  let running = true;
  const exited = new Promise<ContainerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      // What the main process left behind dies with it, as in a PID namespace whose init exits.
      signalGroup(child.pid!, 'SIGKILL');
      resolve({
        exitCode: code ?? 128 + (signal ? (signalNumbers[signal] ?? 0) : 0),
        ...(signal ? { signal: signalNumbers[signal] ?? 0 } : {}),
        finishedAtMs: Date.now(),
      });
    });
  });
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  await log.close();
  if (spawned) throw spawned;
  return {
    pid: child.pid!,
    startedAtMs,
    exited,
    get running() {
      return running;
    },
    terminate(signal: NodeJS.Signals = 'SIGTERM') {
      if (!running) return;
      try {
        process.kill(child.pid!, signal);
      } catch {
        // exited meanwhile
      }
    },
    kill() {
      signalGroup(child.pid!, 'SIGKILL');
    },
  };
}
