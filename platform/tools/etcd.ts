// etcd, the one way our code runs it: a single throwaway member (the pinned build from the cache),
// its flags, its version, and readiness (GET /health answers 2xx), wherever it runs: on the host, or in
// a sandbox (`enter` makes the StartOptions, the health check is made from inside).
import path from 'node:path';
import { runCommand } from './command.js';
import { cachedBinary } from './find.js';
import { startProcess, type ManagedProcess, type StartOptions } from './process.js';

export interface EtcdConfig {
  dataDir: string;
  /** http://HOST:PORT clients connect to. */
  clientUrl: string;
  /** http://HOST:PORT of the (only) peer listener. */
  peerUrl: string;
}

export function etcdArgs(config: EtcdConfig): string[] {
  return [
    `--data-dir=${config.dataDir}`,
    `--listen-client-urls=${config.clientUrl}`,
    `--advertise-client-urls=${config.clientUrl}`,
    `--listen-peer-urls=${config.peerUrl}`,
    `--initial-advertise-peer-urls=${config.peerUrl}`,
    `--initial-cluster=default=${config.peerUrl}`,
    // Throwaway data: skipping fsync makes writes (every apply) much cheaper on a busy disk.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

/** `etcd --version`'s first line: "etcd Version: 3.6.16" -> "3.6.16". */
export async function etcdVersion(binary: string = cachedBinary('etcd')): Promise<string> {
  const { stdout } = await runCommand(binary, ['--version']);
  const match = /^etcd Version: (\S+)/m.exec(stdout);
  if (!match) throw new Error(`unexpected etcd --version output: ${stdout.trim()}`);
  return match[1]!;
}

export interface StartEtcdOptions extends EtcdConfig {
  binary?: string;
  /** Where the process runs: StartOptions for the host (default) or a sandbox's enter(). */
  enter?: (options: StartOptions) => StartOptions;
  readyTimeoutMs?: number;
  onLine?: (line: string) => void;
}

/** Starts etcd and resolves once /health answers; a member's old data under dataDir is not reused. */
export function startEtcd(options: StartEtcdOptions): Promise<ManagedProcess> {
  const start: StartOptions = {
    name: 'etcd',
    command: options.binary ?? cachedBinary('etcd'),
    args: etcdArgs(options),
    readyUrl: `${options.clientUrl}/health`,
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    cwd: path.dirname(options.dataDir),
    ...(options.onLine ? { onLine: options.onLine } : {}),
  };
  return startProcess(options.enter ? options.enter(start) : start);
}
