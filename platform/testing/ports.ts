// Free loopback ports below Linux's ephemeral range. A port the kernel picked (listen on 0) comes from
// 32768 and up, the same range outgoing connections take their source ports from, so a server started a
// moment later can find it taken by some client's connection. Ports picked below that range do not race
// with outgoing connections, only with other servers, which the bind check and retry in callers cover.
import { portInUse } from '../local/processes.js';

export interface PortRange {
  min: number;
  max: number;
}

/** Below /proc/sys/net/ipv4/ip_local_port_range's default start, above the usual fixed service ports. */
export const lowPortRange: PortRange = { min: 20000, max: 32767 };

// Ports handed out by this process, so two servers started at once never get the same one.
const handedOut = new Set<number>();

/** A loopback port in range that nothing listened on a moment ago and this process has not handed out. */
export async function freeLowPort(range: PortRange = lowPortRange): Promise<number> {
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
