import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMessage, DnsFormatError, encodeMessage, RecordClass, RecordType, type Message } from '../dns-wire.js';

// A query for example.com A with RD set and an EDNS0 OPT record (UDP size 1232), byte for byte as
// `dig example.com` sends it minus the cookie option.
const digQuery = Buffer.from(
  '1f2b' + '0120' + '0001' + '0000' + '0000' + '0001' + '076578616d706c6503636f6d00' + '0001' + '0001' + '00' + '0029' + '04d0' + '00000000' + '0000',
  'hex',
);

test('a real query decodes: id, flags, question, EDNS0 payload size', () => {
  const message = decodeMessage(digQuery);
  assert.equal(message.header.id, 0x1f2b);
  assert.equal(message.header.qr, false);
  assert.equal(message.header.rd, true);
  assert.equal(message.header.opcode, 0);
  assert.deepEqual(message.questions, [{ name: 'example.com', type: RecordType.A, class: RecordClass.IN }]);
  assert.deepEqual(message.edns, { udpSize: 1232 });
  assert.deepEqual(message.additionals, [], 'OPT is carried as edns, not as a record');
});

function response(answers: Message['answers']): Message {
  return {
    header: { id: 7, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: false, rcode: 0 },
    questions: [{ name: 'Web.NS.svc.cluster.local', type: RecordType.A, class: RecordClass.IN }],
    answers,
    authorities: [],
    additionals: [],
  };
}

test('an answer encodes and decodes back to the same records, names compressed against the question', () => {
  const message: Message = {
    ...response([
      { name: 'Web.NS.svc.cluster.local', type: RecordType.CNAME, class: RecordClass.IN, ttl: 5, data: { cname: 'ingress.kn.svc.cluster.local' } },
      { name: 'ingress.kn.svc.cluster.local', type: RecordType.A, class: RecordClass.IN, ttl: 5, data: { a: '10.96.0.9' } },
    ]),
    authorities: [
      {
        name: 'cluster.local',
        type: RecordType.SOA,
        class: RecordClass.IN,
        ttl: 5,
        data: { soa: { mname: 'ns.dns.cluster.local', rname: 'hostmaster.cluster.local', serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } },
      },
    ],
    edns: { udpSize: 1232 },
  };
  const bytes = encodeMessage(message);
  const decoded = decodeMessage(bytes);
  assert.deepEqual(decoded, message);
  // The first answer's owner is a two-byte pointer to the question's name at offset 12.
  const questionEnd = 12 + 'Web.NS.svc.cluster.local'.length + 2 + 4;
  assert.equal(bytes.readUInt16BE(questionEnd), 0xc000 | 12);
  // Uncompressed, the three names ending in cluster.local would cost far more than this.
  assert.ok(bytes.length < 150, `${bytes.length} bytes`);
});

test('an answer larger than the client can take over UDP is truncated: TC set, records dropped', () => {
  const many = Array.from({ length: 40 }, (_, i) => ({
    name: 'Web.NS.svc.cluster.local',
    type: RecordType.A,
    class: RecordClass.IN,
    ttl: 5,
    data: { a: `10.244.1.${i}` },
  }));
  const full = encodeMessage(response(many));
  assert.ok(full.length > 512);
  const truncated = decodeMessage(encodeMessage(response(many), 512));
  assert.equal(truncated.header.tc, true);
  assert.deepEqual(truncated.answers, []);
  assert.equal(truncated.questions.length, 1, 'the question stays so the client can match the answer');
  assert.equal(decodeMessage(encodeMessage(response(many), 1232)).answers.length, 40, 'fits in an EDNS0 client limit');
});

test('malformed messages are refused with DnsFormatError', () => {
  assert.throws(() => decodeMessage(Buffer.alloc(5)), DnsFormatError);
  // Header says one question, the name's pointer points at itself.
  const loop = Buffer.from('0001' + '0100' + '0001' + '0000' + '0000' + '0000' + 'c00c' + '00010001', 'hex');
  assert.throws(() => decodeMessage(loop), /loop/);
  // A label running past the end.
  const short = Buffer.from('0001' + '0100' + '0001' + '0000' + '0000' + '0000' + '3f61', 'hex');
  assert.throws(() => decodeMessage(short), DnsFormatError);
  assert.throws(() => encodeMessage(response([{ name: `${'a'.repeat(64)}.local`, type: 1, class: 1, ttl: 5, data: { a: '1.2.3.4' } }])), /1 to 63 bytes/);
});
