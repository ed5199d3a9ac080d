// The cluster's DNS server, what CoreDNS is on a cluster: UDP and TCP on one address (10.96.0.10:53 in
// the sandbox, the nameserver every pod's resolv.conf names), answering for the cluster zone from the
// shared Service catalog (dns-zone.ts) and NXDOMAIN for everything else.
import dgram from 'node:dgram';
import net from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../functions/runtime/src/logger.js';
import { startServiceCatalog, type ServiceCatalog } from './catalog.js';
import { classicUdpSize, decodeHeaderId, decodeMessage, DnsFormatError, encodeMessage, Opcode, Rcode, type Message } from './dns-wire.js';
import { answer, type ZoneOptions, type ZoneSource } from './dns-zone.js';

export interface DnsOptions {
  kubeConfig: KubeConfig;
  /** The address to serve on, e.g. 10.96.0.10. */
  address: string;
  /** 53 in the sandbox; 0 picks a free port (the same one for UDP and TCP). */
  port: number;
  /** The cluster's zone, e.g. cluster.local. */
  domain: string;
  /** Seconds clients may cache answers; default 5, as CoreDNS's kubernetes plugin. */
  ttl?: number;
  catalog?: ServiceCatalog;
  log?: Logger;
}

export interface DnsServer {
  readonly address: string;
  readonly port: number;
  /** Queries answered so far, by transport, and UDP answers cut short (TC) for the client to ask on TCP. */
  stats(): { udp: number; tcp: number; truncated: number };
  close(): Promise<void>;
}

/** What we tell EDNS0 clients we accept and send over UDP: the size DNS Flag Day 2020 settled on. */
const ednsUdpSize = 1232;
const tcpIdleMs = 10_000;

/**
 * The answer to one query as bytes, or undefined when nothing should be sent (a response, or bytes too
 * short to carry an id). maxUdpSize is set for UDP, where the client's limit applies.
 */
export function respond(query: Buffer, source: ZoneSource, zone: ZoneOptions, transport: 'udp' | 'tcp'): Buffer | undefined {
  let message: Message;
  try {
    message = decodeMessage(query);
  } catch (err) {
    const id = decodeHeaderId(query);
    if (!(err instanceof DnsFormatError) || id === undefined) return undefined;
    return encodeMessage(reply(id, Rcode.FORMERR, { rd: false, opcode: Opcode.QUERY }));
  }
  const { header } = message;
  if (header.qr) return undefined;
  const base = { rd: header.rd, opcode: header.opcode };
  const withEdns = (m: Message): Message => (message.edns ? { ...m, edns: { udpSize: ednsUdpSize } } : m);
  const limit = transport === 'tcp' ? 65_535 : Math.min(message.edns?.udpSize ?? classicUdpSize, 65_535);
  if (header.opcode !== Opcode.QUERY) return encodeMessage(withEdns(reply(header.id, Rcode.NOTIMP, base)), limit);
  const question = message.questions[0];
  if (message.questions.length !== 1 || !question) return encodeMessage(withEdns(reply(header.id, Rcode.FORMERR, base)), limit);
  const result = answer(question, source, zone);
  return encodeMessage(
    withEdns({
      header: { id: header.id, qr: true, opcode: header.opcode, aa: result.authoritative, tc: false, rd: header.rd, ra: false, rcode: result.rcode },
      questions: [question],
      answers: result.answers,
      authorities: result.authorities,
      additionals: [],
    }),
    limit,
  );
}

function reply(id: number, rcode: number, base: { rd: boolean; opcode: number }): Message {
  return {
    header: { id, qr: true, opcode: base.opcode, aa: false, tc: false, rd: base.rd, ra: false, rcode },
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

export async function startDns(options: DnsOptions): Promise<DnsServer> {
  const log = options.log ?? createLogger({ fields: { component: 'dns' } });
  const ownCatalog = options.catalog === undefined;
  const catalog = options.catalog ?? (await startServiceCatalog({ kubeConfig: options.kubeConfig, log }));
  const zone: ZoneOptions = { domain: options.domain, ttl: options.ttl ?? 5 };
  const source: ZoneSource = { service: (ns, name) => catalog.service(ns, name), endpointSlices: (ns, name) => catalog.endpointSlices(ns, name) };
  const counts = { udp: 0, tcp: 0, truncated: 0 };
  const handle = (query: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    try {
      const response = respond(query, source, zone, transport);
      if (response) {
        counts[transport]++;
        // The TC bit, third byte's second-lowest bit of the flags.
        if (transport === 'udp' && (response[2]! & 0x02) !== 0) counts.truncated++;
      }
      return response;
    } catch (err) {
      log.error('cannot answer a query', { err });
      const id = decodeHeaderId(query);
      return id === undefined ? undefined : encodeMessage(reply(id, Rcode.SERVFAIL, { rd: true, opcode: Opcode.QUERY }));
    }
  };

  const connections = new Set<net.Socket>();
  let udp: dgram.Socket | undefined;
  let tcp: net.Server | undefined;
  const closeAll = async () => {
    for (const socket of connections) socket.destroy();
    await Promise.all([udp && new Promise<void>((resolve) => udp!.close(() => resolve())), tcp && new Promise<void>((resolve) => tcp!.close(() => resolve()))]);
    if (ownCatalog) await catalog.close();
  };

  try {
    // Port 0 means "any": the TCP listener must then take the port UDP got, which may be taken; retry.
    for (let attempt = 0; ; attempt++) {
      udp = await bindUdp(options.address, options.port, handle, log);
      const port = udp.address().port;
      try {
        tcp = await listenTcp(options.address, port, handle, connections);
        break;
      } catch (err) {
        await new Promise<void>((resolve) => udp!.close(() => resolve()));
        udp = undefined;
        if (options.port !== 0 || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  } catch (err) {
    await closeAll();
    throw new Error(`cannot serve DNS on ${options.address}:${options.port}: ${(err as Error).message}`, { cause: err });
  }
  const port = udp.address().port;
  log.info('serving DNS', { address: options.address, port, domain: zone.domain });
  return { address: options.address, port, stats: () => ({ ...counts }), close: closeAll };
}

function bindUdp(address: string, port: number, handle: (query: Buffer, transport: 'udp') => Buffer | undefined, log: Logger): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
  socket.on('message', (query, from) => {
    const response = handle(query, 'udp');
    if (response) socket.send(response, from.port, from.address);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      socket.on('error', (err) => log.error('UDP socket failed', { err }));
      resolve(socket);
    });
  });
}

function listenTcp(
  address: string,
  port: number,
  handle: (query: Buffer, transport: 'tcp') => Buffer | undefined,
  connections: Set<net.Socket>,
): Promise<net.Server> {
  const server = net.createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    socket.setTimeout(tcpIdleMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    // Each message is preceded by its length in two bytes (RFC 1035 4.2.2); a client may send several.
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const query = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        const response = handle(query, 'tcp');
        if (!response) continue;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(response.length);
        socket.write(Buffer.concat([prefix, response]));
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
