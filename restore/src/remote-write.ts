// Pushing samples to a Prometheus remote-write receiver (protocol 1.0: a snappy-compressed protobuf
// WriteRequest per POST), for restoring into a Prometheus that is already running. The receiver must
// accept it (`--web.enable-remote-write-receiver`) and accept old samples: a TSDB takes samples older
// than its head only within `storage.tsdb.out_of_order_time_window`.
//
// The encoding is written out here rather than pulled in: WriteRequest{TimeSeries{Label, Sample}} is
// four small messages, and snappy's block format allows a stream of literals, which every decoder
// reads. Uncompressed, a request is larger on the wire but costs no CPU to pack.
import { exitCodes, RestoreError } from './errors.js';
import type { RestoredSeries } from './samples.js';

/** Protobuf fields into one growing buffer; finish() hands the message out and starts anew. */
class ProtoWriter {
  private buf = Buffer.allocUnsafe(4096);
  private size = 0;

  bytes(field: number, data: Buffer): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.room(data.length);
    data.copy(this.buf, this.size);
    this.size += data.length;
  }

  string(field: number, text: string): void {
    this.bytes(field, Buffer.from(text, 'utf8'));
  }

  double(field: number, value: number): void {
    this.tag(field, 1);
    this.room(8);
    this.buf.writeDoubleLE(value, this.size);
    this.size += 8;
  }

  int64(field: number, value: number): void {
    this.tag(field, 0);
    if (value >= 0) {
      this.varint(value);
      return;
    }
    // A negative int64 is the ten-byte varint of its two's complement.
    let v = BigInt.asUintN(64, BigInt(value));
    this.room(10);
    while (v >= 0x80n) {
      this.buf[this.size++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.size++] = Number(v);
  }

  finish(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.size));
    this.size = 0;
    return out;
  }

  private tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A non-negative integer up to 2^53, seven bits a byte. */
  private varint(value: number): void {
    this.room(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.size++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.size++] = v;
  }

  private room(bytes: number): void {
    if (this.size + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.size + bytes));
    this.buf.copy(bigger, 0, 0, this.size);
    this.buf = bigger;
  }
}

/** Prometheus's text for a value back to the double it stands for. */
function parseValue(v: string): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(v);
}

/** prometheus.WriteRequest{timeseries} for the given series. */
export function encodeWriteRequest(series: readonly RestoredSeries[]): Buffer {
  const request = new ProtoWriter();
  const ts = new ProtoWriter();
  const part = new ProtoWriter();
  for (const s of series) {
    for (const [name, value] of s.labels) {
      part.string(1, name);
      part.string(2, value);
      ts.bytes(1, part.finish());
    }
    for (const { t, v } of s.points) {
      part.double(1, parseValue(v));
      part.int64(2, t);
      ts.bytes(2, part.finish());
    }
    request.bytes(1, ts.finish());
  }
  return request.finish();
}

/** Snappy's block format as literals only: the length, then the data in literal elements. */
export function snappyLiterals(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const length: number[] = [];
  let n = data.length;
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  parts.push(Buffer.from(length));
  for (let offset = 0; offset < data.length; offset += 65536) {
    const chunk = data.subarray(offset, offset + 65536);
    const lenMinusOne = chunk.length - 1;
    // Tag: literal (low bits 00); lengths over 60 follow the tag in 1 or 2 little-endian bytes.
    if (lenMinusOne < 60) parts.push(Buffer.from([lenMinusOne << 2]));
    else if (lenMinusOne < 256) parts.push(Buffer.from([60 << 2, lenMinusOne]));
    else parts.push(Buffer.from([61 << 2, lenMinusOne & 0xff, lenMinusOne >> 8]));
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export interface RemoteWriteOptions {
  url: string;
  /** Samples per request (Prometheus's own sender uses 2000 by default). */
  maxSamples?: number;
  timeoutMs?: number;
}

/** Batches series into requests and sends them in order; throws RestoreError when refused. */
export class RemoteWriter {
  private batch: RestoredSeries[] = [];
  private samples = 0;
  requests = 0;

  constructor(private readonly options: RemoteWriteOptions) {}

  async write(series: RestoredSeries): Promise<void> {
    this.batch.push(series);
    this.samples += series.points.length;
    if (this.samples >= (this.options.maxSamples ?? 2000)) await this.flush();
  }

  async end(): Promise<void> {
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const body = snappyLiterals(encodeWriteRequest(this.batch));
    this.batch = [];
    this.samples = 0;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.options.url, {
          method: 'POST',
          body,
          headers: {
            'Content-Type': 'application/x-protobuf',
            'Content-Encoding': 'snappy',
            'X-Prometheus-Remote-Write-Version': '0.1.0',
            'User-Agent': 'promsnap-restore',
          },
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
        });
      } catch (err) {
        if (attempt < 3) continue;
        throw new RestoreError([`cannot reach the remote-write receiver ${this.options.url}: ${(err as Error).message}`], exitCodes.remoteWrite, {
          cause: err,
        });
      }
      const text = (await res.text()).trim().slice(0, 500);
      if (res.ok) {
        this.requests++;
        return;
      }
      // 5xx and 429 may pass on a retry; a 4xx is about these samples and will not.
      if ((res.status >= 500 || res.status === 429) && attempt < 3) {
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        continue;
      }
      const hint =
        res.status === 404
          ? 'Is the receiver on? Prometheus needs --web.enable-remote-write-receiver, and the URL ends in /api/v1/write.'
          : /out of (bounds|order)|too old/i.test(text)
            ? 'The samples are older than the receiver takes: set storage.tsdb.out_of_order_time_window in its configuration to cover them.'
            : "See the receiver's answer above.";
      throw new RestoreError([`the remote-write receiver ${this.options.url} refused the samples (${res.status}): ${text}`, hint], exitCodes.remoteWrite);
    }
  }
}
