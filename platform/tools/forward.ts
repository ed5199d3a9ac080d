// Reaching a TCP address inside a sandbox from the host: host 127.0.0.1:PORT <-> unix socket <-> the
// address inside. The inside end is forwarder.ts, started in the sandbox's network namespace, listening
// on a socket file in the state dir; this module is the host end: `dialVia` opens one connection to an
// inside address through it, `listenForward` serves a loopback port whose every connection is one such
// dial. The same pattern as testing/netns.ts + netns-bridge.ts, generalised: the inside address is
// named per connection, so one forwarder serves every forward of a sandbox.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort, retryOnPortClash } from './ports.js';

/** The inside end's script: `node forwarder.ts SOCKET` in the sandbox. */
export const forwarderScript = fileURLToPath(new URL('./forwarder.ts', import.meta.url));

export interface ForwardTarget {
  host: string;
  port: number;
}

/** A loopback port on the host that reaches a TCP address inside a sandbox. */
export interface Forward {
  readonly hostPort: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly target: ForwardTarget;
  /** Stops listening and drops every open connection. Idempotent. */
  close(): Promise<void>;
}

/** Opens a connection to an address as seen from inside; rejects with the inside end's reason. */
export type Dial = (target: ForwardTarget) => Promise<net.Socket>;

const maxAnswerBytes = 512;

/** Dials through a forwarder.ts listening on socketPath. */
export function dialVia(socketPath: string, timeoutMs = 10_000): Dial {
  return (target) =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ path: socketPath });
      let answer = Buffer.alloc(0);
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('readable', onReadable);
        socket.off('error', settle);
        socket.off('end', onEnd);
        if (!err) return resolve(socket);
        socket.destroy();
        reject(new Error(`connect ${target.host}:${target.port} in the sandbox: ${err.message}`));
      };
      // Read in paused mode: once the 'readable' listener is gone the socket is in its initial state
      // again, and starts flowing when the caller attaches its own 'data' listener or pipes it.
      const onReadable = () => {
        for (let chunk = socket.read() as Buffer | null; chunk !== null && !settled; chunk = socket.read() as Buffer | null) {
          answer = Buffer.concat([answer, chunk]);
          const end = answer.indexOf(0x0a);
          if (end < 0) {
            if (answer.length > maxAnswerBytes) settle(new Error('malformed answer from the forwarder'));
            continue;
          }
          const line = answer.subarray(0, end).toString('utf8');
          if (line !== 'ok') return settle(new Error(line.replace(/^error /, '')));
          // Bytes the inside server sent at once (a greeting) arrived with the answer.
          const rest = answer.subarray(end + 1);
          if (rest.length > 0) socket.unshift(rest);
          return settle();
        }
      };
      const onEnd = () => settle(new Error('the forwarder closed the connection'));
      const timer = setTimeout(() => settle(new Error(`no answer from the sandbox's forwarder within ${timeoutMs} ms`)), timeoutMs);
      socket.on('readable', onReadable);
      socket.once('error', settle);
      socket.once('end', onEnd);
      socket.once('connect', () => socket.write(JSON.stringify(target) + '\n'));
    });
}

/**
 * Listens on 127.0.0.1:hostPort (a free port when not given) and splices every connection to target
 * through dial. A connection whose dial fails is closed at once, as a refused TCP connection would be.
 */
export async function listenForward(dial: Dial, target: ForwardTarget, hostPort?: number): Promise<Forward> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const server = net.createServer((client) => {
    track(client);
    client.pause();
    client.on('error', () => client.destroy());
    dial(target).then(
      (upstream) => {
        track(upstream);
        if (client.destroyed) return upstream.destroy();
        const close = () => {
          client.destroy();
          upstream.destroy();
        };
        for (const s of [client, upstream]) {
          s.on('error', close);
          s.on('close', close);
        }
        client.pipe(upstream);
        upstream.pipe(client);
      },
      () => client.resetAndDestroy(),
    );
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const port = hostPort !== undefined ? await listen(hostPort) : await retryOnPortClash(async () => listen(await freePort()));

  let closing: Promise<void> | undefined;
  return {
    hostPort: port,
    url: `http://127.0.0.1:${port}`,
    target,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
