// A TCP proxy on loopback that misbehaves on purpose, so tests can meet real network faults: an
// answer that starts late (a slow dependency) or a connection cut half-way through a response.
import net, { type AddressInfo, type Socket } from 'node:net';

export interface ProxyFaults {
  /** Hold the first byte of each response this long. */
  delayResponseMs?: number;
  /** Reset the connection once this many response bytes have gone through since these faults were set. */
  cutAfterBytes?: number;
}

export interface TcpProxy {
  port: number;
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Response bytes passed to clients so far. */
  readonly bytesForwarded: number;
  faults: ProxyFaults;
  close(): Promise<void>;
}

export interface ProxyTarget {
  host?: string;
  port: number;
}

export interface LoopbackListener {
  port: number;
  url: string;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

/**
 * Listens on a free loopback port and gives each client its own connection to target; `wire` decides
 * how bytes move between the two. Either side failing drops both, as a broken link would.
 */
export async function listenProxy(target: ProxyTarget, wire: (client: Socket, upstream: Socket) => void): Promise<LoopbackListener> {
  const sockets = new Set<Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host ?? '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    wire(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export async function startTcpProxy(target: ProxyTarget, faults: ProxyFaults = {}): Promise<TcpProxy> {
  let connections = 0;
  let bytesForwarded = 0;
  let current = faults;
  // Where bytesForwarded stood when the faults were set: a cut counts from there, across connections
  // (a kept-alive connection may already have carried earlier answers).
  let faultsSetAt = 0;

  const listener = await listenProxy(target, (client, upstream) => {
    connections++;
    client.pipe(upstream);
    client.on('end', () => upstream.end());

    let started: Promise<void> | undefined;
    upstream.on('data', (chunk: Buffer) => {
      upstream.pause();
      started ??= new Promise((resolve) => setTimeout(resolve, current.delayResponseMs ?? 0));
      void started.then(() => {
        const cut = current.cutAfterBytes;
        const sent = bytesForwarded - faultsSetAt;
        if (cut !== undefined && sent + chunk.length >= cut) {
          const part = chunk.subarray(0, Math.max(0, cut - sent));
          bytesForwarded += part.length;
          client.write(part, () => {
            client.resetAndDestroy();
            upstream.destroy();
          });
          return;
        }
        bytesForwarded += chunk.length;
        if (client.write(chunk)) upstream.resume();
        else client.once('drain', () => upstream.resume());
      });
    });
    upstream.on('end', () => void (started ?? Promise.resolve()).then(() => client.end()));
  });

  return {
    port: listener.port,
    url: listener.url,
    get connections() {
      return connections;
    },
    get bytesForwarded() {
      return bytesForwarded;
    },
    get faults() {
      return current;
    },
    set faults(next: ProxyFaults) {
      current = next;
      faultsSetAt = bytesForwarded;
    },
    close: () => listener.close(),
  };
}
