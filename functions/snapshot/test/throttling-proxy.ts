// A TCP proxy on loopback that passes bytes at a fixed rate each way, so a test meets a slow dependency
// for real: a store that takes an upload slowly, or a Prometheus that trickles its answer. The rate is
// the whole link's, shared by every connection (an upload sends parts on several at once), and each
// side is read only as fast as it allows, so TCP's own flow control holds the sender back.
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenProxy, type LoopbackListener, type ProxyTarget } from '../../../platform/testing/tcp-proxy.js';

export type ThrottlingProxy = LoopbackListener;

export async function startThrottlingProxy(target: ProxyTarget, bytesPerSecond: number): Promise<ThrottlingProxy> {
  const up = new Link(bytesPerSecond);
  const down = new Link(bytesPerSecond);
  return listenProxy(target, (client, upstream) => {
    throttle(client, upstream, up);
    throttle(upstream, client, down);
  });
}

/** One direction of the link: hands out the time each chunk may pass, in turn across connections. */
class Link {
  private freeAt = 0;
  constructor(private readonly bytesPerSecond: number) {}

  /** Milliseconds to wait before sending `bytes`. */
  reserve(bytes: number): number {
    const now = Date.now();
    this.freeAt = Math.max(this.freeAt, now) + (bytes / this.bytesPerSecond) * 1000;
    return this.freeAt - now;
  }
}

/** Copies `from` to `to` one chunk at a time, each once the link has had time for it. */
function throttle(from: Socket, to: Socket, link: Link): void {
  let sent = Promise.resolve();
  from.on('data', (chunk: Buffer) => {
    from.pause();
    const waitMs = link.reserve(chunk.length);
    sent = sent
      .then(() => sleep(waitMs))
      .then(() => new Promise<void>((resolve) => (to.destroyed ? resolve() : to.write(chunk, () => resolve()))))
      .then(() => void from.resume());
  });
  from.on('end', () => void sent.then(() => to.end()));
}
