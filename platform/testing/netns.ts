// Processes in private network namespaces, for servers whose ports cannot be chosen (Knative's channel
// dispatcher always binds :8080, its controllers' health probes too). Each such process gets a loopback
// of its own via `unshare -n`; netns-bridge.ts, running in the namespace, carries the few ports it must
// share with the host over unix sockets, which both sides can reach:
//   inbound (host ports the process dials: the API server, the cluster proxy) keep their numbers inside;
//   outbound (ports the process listens on) appear on the host as socket files.
import { rmSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { CommandError, runCommand } from '../tools/command.js';
import { findSystemTool } from '../tools/find.js';
import { startProcess, type ManagedProcess, type StartOptions } from '../tools/process.js';

const bridgeScript = fileURLToPath(new URL('./netns-bridge.ts', import.meta.url));

export type Isolation = { available: true; unshare: string; unshareArgs: string[]; ip: string } | { available: false; reason: string };

let probed: Promise<Isolation> | undefined;

/**
 * Whether this machine lets us make network namespaces: as root with `unshare -n`, otherwise in a
 * user namespace of our own (`unshare -r -n`) where the kernel allows unprivileged ones. Probed once by
 * bringing loopback up in a throwaway namespace, which is exactly what a real run needs.
 */
export function networkIsolation(): Promise<Isolation> {
  probed ??= (async (): Promise<Isolation> => {
    let unshare: string;
    let ip: string;
    try {
      unshare = findSystemTool('unshare');
      ip = findSystemTool('ip');
    } catch (err) {
      return { available: false, reason: (err as Error).message.split('\n')[0]! };
    }
    const attempts = process.getuid?.() === 0 ? [['-n'], ['-r', '-n']] : [['-r', '-n']];
    const failures: string[] = [];
    for (const unshareArgs of attempts) {
      try {
        await runCommand(unshare, [...unshareArgs, ip, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
        return { available: true, unshare, unshareArgs, ip };
      } catch (err) {
        failures.push(`unshare ${unshareArgs.join(' ')}: ${(err instanceof CommandError ? err.result.stderr || err.message : (err as Error).message).trim()}`);
      }
    }
    return { available: false, reason: failures.join('; ') };
  })();
  return probed;
}

/**
 * Host ends of the inbound bridges: one socket file per host port, shared by every namespace that
 * needs that port, each connection spliced to 127.0.0.1:PORT.
 */
export class HostBridges {
  private readonly servers = new Map<number, { server: net.Server; socket: string }>();
  private readonly connections = new Set<net.Socket>();

  constructor(private readonly dir: string) {}

  /** The socket file that reaches the host's 127.0.0.1:port, listening once this resolves. */
  async socketFor(port: number): Promise<string> {
    const existing = this.servers.get(port);
    if (existing) return existing.socket;
    const socket = path.join(this.dir, `host-${port}.sock`);
    rmSync(socket, { force: true });
    const server = net.createServer((client) => {
      const upstream = net.connect({ port, host: '127.0.0.1' });
      for (const s of [client, upstream]) {
        this.connections.add(s);
        s.on('close', () => this.connections.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.servers.set(port, { server, socket });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: socket }, () => resolve());
    });
    return socket;
  }

  async close(): Promise<void> {
    for (const s of this.connections) s.destroy();
    await Promise.all([...this.servers.values()].map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))));
    this.servers.clear();
  }
}

export interface IsolatedStartOptions extends StartOptions {
  isolation: Extract<Isolation, { available: true }>;
  bridges: HostBridges;
  /** Folder for the outbound socket files (short: a socket path is limited to 107 bytes). */
  dir: string;
  /** Host loopback ports the process dials; reachable inside under the same numbers. */
  inbound: number[];
  /** Ports the process listens on inside, each exposed to the host as a socket file. */
  outbound: number[];
}

export interface IsolatedProcess {
  process: ManagedProcess;
  /** Host-side socket file for each outbound port. */
  sockets: Map<number, string>;
}

/** Starts options.command in a network namespace of its own, with its bridges in place first. */
export async function startIsolated(options: IsolatedStartOptions): Promise<IsolatedProcess> {
  const inbound = await Promise.all(options.inbound.map(async (port) => ({ port, socket: await options.bridges.socketFor(port) })));
  const sockets = new Map(options.outbound.map((port) => [port, path.join(options.dir, `${options.name}-${port}.sock`)]));
  const config = { ip: options.isolation.ip, inbound, outbound: [...sockets].map(([port, socket]) => ({ port, socket })) };
  const { isolation, bridges: _bridges, dir: _dir, inbound: _in, outbound: _out, command, args, ...rest } = options;
  const child = await startProcess({
    ...rest,
    command: isolation.unshare,
    args: [...isolation.unshareArgs, process.execPath, bridgeScript, JSON.stringify(config), '--', command, ...(args ?? [])],
  });
  return { process: child, sockets };
}
