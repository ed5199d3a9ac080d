// What the figures were measured on: they mean little without the machine and its load.
import os from 'node:os';
import { runCommand } from '../platform/tools/command.js';
import { versions } from '../platform/tools/versions.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadAverage: number;
  tools: string;
}

async function firstLine(command: string, args: string[]): Promise<string> {
  const result = await runCommand(command, args, { allowFailure: true }).catch(() => undefined);
  return result?.code === 0 ? (result.stdout.split('\n')[0] ?? '').trim() : 'unknown';
}

export async function describeMachine(): Promise<Machine> {
  const curl = (await firstLine('curl', ['--version'])).split(' ').slice(0, 2).join(' ');
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg()[0]!,
    tools: `Prometheus ${versions.prometheus}, MinIO ${versions.minio}, mc ${versions.mc}, ${curl}`,
  };
}
