// The one port policy: free loopback ports below Linux's ephemeral range. A port the kernel picks
// (listen on 0) comes from 32768 and up, the same range outgoing connections take their source ports
// from, so a server started a moment later can find it taken by some client's connection. Ports picked
// below that range do not race with outgoing connections, only with other servers, which the bind
// check here and the retry in callers (a clash is reported as "address already in use") cover.
import { createServer } from 'node:net';

export interface PortRange {
  min: number;
  max: number;
}

/** Below /proc/sys/net/ipv4/ip_local_port_range's default start, above the usual fixed service ports. */
export const lowPortRange: PortRange = { min: 20000, max: 32767 };

// Ports handed out by this process, so two servers started at once never get the same one.
const handedOut = new Set<number>();

/** A loopback port in range that nothing listened on a moment ago and this process has not handed out. */
export async function freePort(range: PortRange = lowPortRange): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    // Random rather than sequential: test files run in parallel processes that cannot see each other's set.
    const port = range.min + Math.floor(Math.random() * (range.max - range.min + 1));
    if (handedOut.has(port)) continue;
    if (await portInUse(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port between ${range.min} and ${range.max} after 200 tries`);
}

/** Whether something already listens on host:port (a port taken is reported, not crashed on). */
export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, host, () => server.close(() => resolve(false)));
  });
}

/** Whether an error says a port was taken between picking it and binding it. */
export function isAddressInUse(err: unknown): boolean {
  return err instanceof Error && /address already in use|EADDRINUSE/i.test(err.message);
}

/** Runs start with new ports after a clash (another process took a picked port first), up to 3 times. */
export async function retryOnPortClash<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !isAddressInUse(err)) throw err;
    }
  }
}
