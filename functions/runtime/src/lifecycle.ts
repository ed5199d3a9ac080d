// Serves an HTTP app and shuts it down the way Knative expects: on SIGTERM stop accepting, report not
// ready, let in-flight requests finish, then exit 0; a bounded grace keeps a stuck request from
// holding the pod past its termination period.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from './logger.js';

export interface Lifecycle {
  /** False once shutdown has begun; /readyz answers 503 from then on. */
  readonly accepting: boolean;
  /** Resolves once the process has stopped serving and drained. */
  readonly stopped: Promise<void>;
  readonly server: http.Server;
  readonly port: number;
  shutdown(reason: string): Promise<void>;
}

export interface ServeOptions {
  port: number;
  host?: string;
  log: Logger;
  /** Longest time to wait for in-flight requests after SIGTERM. */
  shutdownGraceMs: number;
  /** Work to finish after the server stops accepting (for example an in-flight snapshot). */
  drain?: () => Promise<void>;
  /** Exit the process when drained; off in tests that call shutdown() themselves. */
  exitOnSignal?: boolean;
}

export async function serve(handler: RequestListener, options: ServeOptions): Promise<Lifecycle> {
  const server = http.createServer(handler);
  // Knative's queue-proxy keeps connections alive; idle sockets must not outlive shutdown.
  server.keepAliveTimeout = 65_000;
  let accepting = true;
  // A client that keeps its connection alive (Knative's queue-proxy does) would hold server.close()
  // open until the grace runs out: once shutdown has begun, close each connection as its response ends.
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.once('close', () => {
      if (!accepting) setImmediate(() => server.closeIdleConnections());
    });
  });
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let shutdownPromise: Promise<void> | undefined;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const shutdown = (reason: string): Promise<void> => {
    shutdownPromise ??= (async () => {
      accepting = false;
      options.log.info('shutting down', { reason, graceMs: options.shutdownGraceMs });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), options.shutdownGraceMs);
        timer.unref();
      });
      const drained = Promise.all([closed, options.drain?.() ?? Promise.resolve()]).then(() => 'drained' as const);
      const outcome = await Promise.race([drained, grace]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        options.log.warn('shutdown grace elapsed; closing remaining connections', { graceMs: options.shutdownGraceMs });
        server.closeAllConnections();
      }
      options.log.info('stopped', { outcome });
      resolveStopped();
    })();
    return shutdownPromise;
  };

  if (options.exitOnSignal ?? true) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        void shutdown(signal).then(() => process.exit(0));
      });
    }
  }

  options.log.info('listening', { port });
  return {
    get accepting() {
      return accepting;
    },
    stopped,
    server,
    port,
    shutdown,
  };
}
