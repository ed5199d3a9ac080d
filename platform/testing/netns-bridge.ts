// Runs inside a private network namespace (started by netns.ts as `unshare -n node netns-bridge.ts
// CONFIG -- COMMAND...`): brings loopback up, bridges TCP ports across the namespace boundary through
// unix sockets (a socket file is reachable from both sides, a loopback port is not), then runs COMMAND
// and exits as it exits. Runs with Node's own type stripping, so it imports nothing but node: modules.
//   inbound:  127.0.0.1:PORT in here -> unix socket -> the host's 127.0.0.1:PORT (the API server, the proxy)
//   outbound: unix socket -> 127.0.0.1:PORT in here (the process's own listeners, for the host to reach)
import { execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';

interface BridgeConfig {
  ip: string;
  inbound: Array<{ port: number; socket: string }>;
  outbound: Array<{ port: number; socket: string }>;
}

function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close);
  b.on('error', close);
  a.on('close', close);
  b.on('close', close);
}

function listen(server: net.Server, where: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => resolve());
  });
}

async function main(): Promise<void> {
  const separator = process.argv.indexOf('--');
  const configText = process.argv[2];
  const [command, ...args] = process.argv.slice(separator + 1);
  if (separator < 0 || !configText || !command) throw new Error('usage: netns-bridge.ts CONFIG_JSON -- COMMAND [ARGS...]');
  const config = JSON.parse(configText) as BridgeConfig;

  // A new network namespace has only a loopback interface, and it starts down.
  execFileSync(config.ip, ['link', 'set', 'lo', 'up'], { stdio: 'inherit' });

  const servers: net.Server[] = [];
  for (const { port, socket } of config.inbound) {
    const server = net.createServer((client) => splice(client, net.connect({ path: socket })));
    await listen(server, { port, host: '127.0.0.1' });
    servers.push(server);
  }
  for (const { port, socket } of config.outbound) {
    rmSync(socket, { force: true });
    const server = net.createServer((client) => splice(client, net.connect({ port, host: '127.0.0.1' })));
    await listen(server, { path: socket });
    servers.push(server);
  }

  // The command is in this process group, so the harness's signals reach it directly: forwarding them
  // too would turn one SIGTERM into two (Knative exits at once on a second one).
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const child = spawn(command, args, { stdio: 'inherit' });
  child.once('error', (err) => {
    process.stderr.write(`netns-bridge: could not start ${command}: ${err.message}\n`);
    process.exit(127);
  });
  child.once('exit', (code, signal) => {
    for (const server of servers) server.close();
    for (const { socket } of config.outbound) rmSync(socket, { force: true });
    process.exit(code ?? (signal ? 128 + (signalNumbers[signal] ?? 15) : 1));
  });
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

main().catch((err: unknown) => {
  process.stderr.write(`netns-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(126);
});
