// Runs inside the tests' network (and mount) namespace, under platform/testing/netns-bridge.ts, which
// has brought loopback up and bridged the API server's port in. It makes the namespace look like the
// cluster's sandbox to the network components (ClusterIPs and pod IPs local routes, a resolv.conf naming
// the cluster DNS), serves echo backends on pod IPs, and a connector socket through which the test
// process, outside, opens TCP connections to any address inside. Node's type stripping runs it: node:
// modules only.
//   connector protocol: the client writes "HOST:PORT\n"; the agent answers "OK\n" and splices, or
//   "ERR <code>\n" and closes.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

interface AgentConfig {
  ip: string;
  localRoutes: string[];
  /**
   * Addresses put on loopback. Local routes alone leave the namespace without an IPv4 address other
   * than 127.0.0.1, and glibc's getaddrinfo (AI_ADDRCONFIG) then returns no IPv4 answer at all.
   */
  addresses: string[];
  /** Bound over /etc/resolv.conf in this mount namespace. */
  resolvConf?: string;
  connector: string;
  /** Echo HTTP servers, IP:PORT each. */
  echo: string[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as AgentConfig;

for (const address of config.addresses) execFileSync(config.ip, ['addr', 'add', address, 'dev', 'lo'], { stdio: 'inherit' });
for (const range of config.localRoutes) execFileSync(config.ip, ['route', 'add', 'local', range, 'dev', 'lo'], { stdio: 'inherit' });
if (config.resolvConf) execFileSync('mount', ['--bind', config.resolvConf, '/etc/resolv.conf'], { stdio: 'inherit' });

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

rmSync(config.connector, { force: true });
const connector = net.createServer((client) => {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf(10);
    if (end < 0) return;
    client.off('data', onData);
    client.pause();
    const target = head.subarray(0, end).toString('utf8').trim();
    const rest = head.subarray(end + 1);
    const colon = target.lastIndexOf(':');
    const upstream = net.connect({ host: target.slice(0, colon), port: Number(target.slice(colon + 1)) });
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      client.end(`ERR ${err.code ?? err.message}\n`);
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      client.write('OK\n');
      if (rest.length > 0) upstream.write(rest);
      splice(client, upstream);
      client.resume();
    });
  };
  client.on('data', onData);
  client.on('error', () => client.destroy());
});

const servers: net.Server[] = [connector];
for (const address of config.echo) {
  const colon = address.lastIndexOf(':');
  let connections = 0;
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      const text = JSON.stringify({
        backend: address,
        connection: (req.socket as net.Socket & { ordinal?: number }).ordinal,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(body).toString('utf8'),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': address });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: net.Socket & { ordinal?: number }) => {
    socket.ordinal = ++connections;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }, resolve));
}
await new Promise<void>((resolve) => connector.listen({ path: config.connector }, resolve));
process.stdout.write('agent ready\n');

process.on('SIGTERM', () => {
  for (const server of servers) server.close();
  rmSync(config.connector, { force: true });
  process.exit(0);
});
