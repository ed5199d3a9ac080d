// Runs a command to completion and hands back what it printed: the one runner for kubectl, mc,
// promtool, skaffold, curl and the other short-lived tools (long-running servers go through process.ts).
import { spawn } from 'node:child_process';

export interface CommandOptions {
  /** Written to the command's stdin (for `-f -`); stdin is closed empty otherwise. */
  input?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) after this long; the result then has code 124, as timeout(1) reports. */
  timeoutMs?: number;
  /** Resolve with a non-zero code instead of throwing CommandError. */
  allowFailure?: boolean;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly result: CommandResult,
  ) {
    const name = command.split('/').pop() ?? command;
    super(`${name} ${args.join(' ')} exited ${result.code}:\n${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

export async function runCommand(command: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const result = await new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${command}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: timedOut ? 124 : (code ?? (signal ? 128 : 1)),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (timedOut ? `\n(killed after ${options.timeoutMs} ms)` : ''),
      });
    });
    // The command may exit without reading stdin (a bad flag); the broken pipe is not the error to report.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
  if (result.code !== 0 && !options.allowFailure) throw new CommandError(command, args, result);
  return result;
}
