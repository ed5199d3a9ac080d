// The inside end of forward.ts, run in a sandbox's network namespace (`node forwarder.ts SOCKET`):
// listens on a unix socket in the state dir (a file both sides of the namespace boundary can reach,
// where a TCP port cannot be) and, for each connection, reads one JSON line naming a TCP address as
// seen from inside ({"host":"10.244.0.1","port":6443}), connects to it, answers "ok" (or "error
// <reason>") on one line, then splices both ways. One process serves every forward of a sandbox.
// Runs with Node's own type stripping, so it imports nothing but node: modules.
import { chmodSync, rmSync } from 'node:fs';
import net from 'node:net';

const maxHeaderBytes = 512;

function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on('error', close);
    s.on('close', close);
  }
}

function parseTarget(line: string): { host: string; port: number } | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null) return undefined;
    const { host, port } = value as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || host === '' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
    return { host, port };
  } catch {
    return undefined;
  }
}

function serve(client: net.Socket): void {
  let header = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    header = Buffer.concat([header, chunk]);
    const end = header.indexOf(0x0a);
    if (end < 0) {
      if (header.length > maxHeaderBytes) client.end('error header too long\n');
      return;
    }
    client.off('data', onData);
    client.pause();
    const target = parseTarget(header.subarray(0, end).toString('utf8'));
    const rest = header.subarray(end + 1);
    if (!target) {
      client.end('error expected {"host":...,"port":...}\n');
      return;
    }
    const upstream = net.connect(target);
    upstream.once('error', (err) => {
      if (!client.destroyed) client.end(`error ${err.message}\n`);
    });
    upstream.once('connect', () => {
      client.write('ok\n');
      if (rest.length > 0) upstream.write(rest);
      splice(client, upstream);
      client.resume();
    });
  };
  client.on('data', onData);
  client.on('error', () => client.destroy());
}

const socketPath = process.argv[2];
if (!socketPath) {
  process.stderr.write('usage: forwarder.ts SOCKET\n');
  process.exit(2);
}
rmSync(socketPath, { force: true });
const server = net.createServer(serve);
server.on('error', (err) => {
  process.stderr.write(`forwarder: ${err.message}\n`);
  process.exit(1);
});
server.listen({ path: socketPath }, () => {
  // Only the sandbox's owner may reach into it.
  chmodSync(socketPath, 0o600);
  process.stdout.write(`forwarder listening on ${socketPath}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => {
    server.close();
    rmSync(socketPath, { force: true });
    process.exit(0);
  });
}
