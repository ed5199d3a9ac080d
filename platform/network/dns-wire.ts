// DNS messages on the wire (RFC 1035 section 4, EDNS0's OPT record from RFC 6891): decode a query,
// encode an answer with name compression, truncate to what the client can take over UDP. Only what a
// cluster DNS needs is typed (A, CNAME, SOA, OPT); other records pass through as raw bytes.

export const RecordType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RecordClass = { IN: 1, ANY: 255 } as const;
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const Opcode = { QUERY: 0 } as const;

export interface Header {
  id: number;
  /** true in a response. */
  qr: boolean;
  opcode: number;
  /** Authoritative answer. */
  aa: boolean;
  /** Truncated: the client should ask again over TCP. */
  tc: boolean;
  /** Recursion desired (copied from the query). */
  rd: boolean;
  /** Recursion available. */
  ra: boolean;
  rcode: number;
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface Soa {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export type RecordData = { a: string } | { cname: string } | { soa: Soa } | { raw: Buffer };

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: RecordData;
}

export interface Edns {
  /** The largest UDP answer the sender can take. */
  udpSize: number;
}

export interface Message {
  header: Header;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  /** Additional records other than OPT. */
  additionals: ResourceRecord[];
  /** Present when the message carried an OPT record. */
  edns?: Edns;
}

export class DnsFormatError extends Error {
  override readonly name = 'DnsFormatError';
}

/** The smallest UDP payload every resolver takes (RFC 1035); EDNS0 may raise it. */
export const classicUdpSize = 512;

// ---------------------------------------------------------------------------------------------------
// Decoding

export function decodeMessage(buf: Buffer): Message {
  if (buf.length < 12) throw new DnsFormatError(`message of ${buf.length} bytes is shorter than a header`);
  const flags = buf.readUInt16BE(2);
  const header: Header = {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  };
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)] as const;
  let offset = 12;
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const name = readName(buf, offset);
    offset = name.next;
    need(buf, offset, 4);
    questions.push({ name: name.name, type: buf.readUInt16BE(offset), class: buf.readUInt16BE(offset + 2) });
    offset += 4;
  }
  const sections: ResourceRecord[][] = [[], [], []];
  let edns: Edns | undefined;
  for (let section = 0; section < 3; section++) {
    for (let i = 0; i < counts[section + 1]!; i++) {
      const name = readName(buf, offset);
      offset = name.next;
      need(buf, offset, 10);
      const type = buf.readUInt16BE(offset);
      const klass = buf.readUInt16BE(offset + 2);
      const ttl = buf.readUInt32BE(offset + 4);
      const length = buf.readUInt16BE(offset + 8);
      offset += 10;
      need(buf, offset, length);
      if (type === RecordType.OPT && section === 2) {
        // OPT's class is the sender's UDP payload size; below 512 means 512 (RFC 6891 6.2.3).
        edns = { udpSize: Math.max(klass, classicUdpSize) };
      } else {
        sections[section]!.push({ name: name.name, type, class: klass, ttl, data: readData(buf, type, offset, length) });
      }
      offset += length;
    }
  }
  return { header, questions, answers: sections[0]!, authorities: sections[1]!, additionals: sections[2]!, ...(edns ? { edns } : {}) };
}

/** Reads the header only: enough to answer FORMERR to a message that does not decode. */
export function decodeHeaderId(buf: Buffer): number | undefined {
  return buf.length >= 2 ? buf.readUInt16BE(0) : undefined;
}

function readData(buf: Buffer, type: number, offset: number, length: number): RecordData {
  switch (type) {
    case RecordType.A:
      if (length !== 4) throw new DnsFormatError(`A record of ${length} bytes`);
      return { a: [...buf.subarray(offset, offset + 4)].join('.') };
    case RecordType.CNAME:
      return { cname: readName(buf, offset).name };
    case RecordType.SOA: {
      const mname = readName(buf, offset);
      const rname = readName(buf, mname.next);
      need(buf, rname.next, 20);
      const at = (i: number) => buf.readUInt32BE(rname.next + i * 4);
      return { soa: { mname: mname.name, rname: rname.name, serial: at(0), refresh: at(1), retry: at(2), expire: at(3), minimum: at(4) } };
    }
    default:
      return { raw: Buffer.from(buf.subarray(offset, offset + length)) };
  }
}

/** A domain name at offset, following compression pointers; names are returned without the final dot. */
function readName(buf: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next: number | undefined;
  let jumps = 0;
  let length = 0;
  for (;;) {
    need(buf, offset, 1);
    const byte = buf[offset]!;
    if (byte === 0) {
      offset += 1;
      break;
    }
    const kind = byte & 0xc0;
    if (kind === 0xc0) {
      need(buf, offset, 2);
      // A pointer may only go backwards; a limit on jumps stops loops all the same.
      if (++jumps > 64) throw new DnsFormatError('compression pointers loop');
      next ??= offset + 2;
      offset = buf.readUInt16BE(offset) & 0x3fff;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError(`label type 0x${kind.toString(16)} is not supported`);
    need(buf, offset + 1, byte);
    length += byte + 1;
    if (length > 254) throw new DnsFormatError('name longer than 255 bytes');
    labels.push(buf.toString('latin1', offset + 1, offset + 1 + byte));
    offset += 1 + byte;
  }
  return { name: labels.join('.'), next: next ?? offset };
}

function need(buf: Buffer, offset: number, bytes: number): void {
  if (offset + bytes > buf.length) throw new DnsFormatError(`message ends at byte ${buf.length}, ${bytes} more needed at ${offset}`);
}

// ---------------------------------------------------------------------------------------------------
// Encoding

/** Encodes a message; over maxSize bytes, the records are dropped and TC set (the client retries on TCP). */
export function encodeMessage(message: Message, maxSize = 65_535): Buffer {
  const full = encode(message);
  if (full.length <= maxSize) return full;
  return encode({ ...message, header: { ...message.header, tc: true }, answers: [], authorities: [], additionals: [] });
}

function encode(message: Message): Buffer {
  const writer = new Writer();
  const h = message.header;
  writer.u16(h.id);
  writer.u16(
    (h.qr ? 0x8000 : 0) | ((h.opcode & 0xf) << 11) | (h.aa ? 0x0400 : 0) | (h.tc ? 0x0200 : 0) | (h.rd ? 0x0100 : 0) | (h.ra ? 0x0080 : 0) | (h.rcode & 0xf),
  );
  writer.u16(message.questions.length);
  writer.u16(message.answers.length);
  writer.u16(message.authorities.length);
  writer.u16(message.additionals.length + (message.edns ? 1 : 0));
  for (const q of message.questions) {
    writer.name(q.name);
    writer.u16(q.type);
    writer.u16(q.class);
  }
  for (const record of [...message.answers, ...message.authorities, ...message.additionals]) writer.record(record);
  if (message.edns) {
    writer.u8(0); // the root name
    writer.u16(RecordType.OPT);
    writer.u16(message.edns.udpSize);
    writer.u32(0); // extended rcode 0, version 0, no flags
    writer.u16(0);
  }
  return writer.finish();
}

class Writer {
  private buf = Buffer.alloc(512);
  private length = 0;
  /** Where each name suffix (lower-cased) was first written, for compression pointers. */
  private readonly suffixes = new Map<string, number>();

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }

  u8(value: number): void {
    this.reserve(1);
    this.buf.writeUInt8(value, this.length);
    this.length += 1;
  }

  u16(value: number): void {
    this.reserve(2);
    this.buf.writeUInt16BE(value, this.length);
    this.length += 2;
  }

  u32(value: number): void {
    this.reserve(4);
    this.buf.writeUInt32BE(value >>> 0, this.length);
    this.length += 4;
  }

  bytes(data: Buffer): void {
    this.reserve(data.length);
    data.copy(this.buf, this.length);
    this.length += data.length;
  }

  name(name: string): void {
    const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = this.suffixes.get(suffix);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      // Pointers have 14 bits: later names can only point into the first 16 KiB.
      if (this.length < 0x4000) this.suffixes.set(suffix, this.length);
      const label = Buffer.from(labels[i]!, 'latin1');
      if (label.length === 0 || label.length > 63) throw new DnsFormatError(`label ${JSON.stringify(labels[i])} must be 1 to 63 bytes`);
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }

  record(record: ResourceRecord): void {
    this.name(record.name);
    this.u16(record.type);
    this.u16(record.class);
    this.u32(record.ttl);
    const lengthAt = this.length;
    this.u16(0);
    const data = record.data;
    if ('a' in data) {
      for (const part of data.a.split('.')) this.u8(Number(part));
    } else if ('cname' in data) {
      this.name(data.cname);
    } else if ('soa' in data) {
      this.name(data.soa.mname);
      this.name(data.soa.rname);
      for (const value of [data.soa.serial, data.soa.refresh, data.soa.retry, data.soa.expire, data.soa.minimum]) this.u32(value);
    } else {
      this.bytes(data.raw);
    }
    this.buf.writeUInt16BE(this.length - lengthAt - 2, lengthAt);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.length + bytes));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}
