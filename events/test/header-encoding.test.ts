// CloudEvents attribute headers as the HTTP binding 1.0.2 (3.1.3.2) encodes and decodes them. Header
// values are given here as Node hands them over: each byte on the wire as one Latin-1 character.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HTTP } from 'cloudevents';
import { createPingEvent, decodeAttributeHeaders, encodeAttributeHeaders, percentEncode, receiveEvent } from '../src/index.js';

/** A text's UTF-8 bytes as Node reads them from a header (Latin-1, one character per byte). */
const rawUtf8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

const ping = {
  'ce-specversion': '1.0',
  'ce-type': 'dev.knative.sources.ping',
  'ce-source': '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule',
  'ce-time': '2026-11-25T10:00:00Z',
};

test("the binding's own example encodes and decodes: Euro, space and an emoji", () => {
  assert.equal(percentEncode('Euro € 😀'), 'Euro%20%E2%82%AC%20%F0%9F%98%80');
  const decoded = decodeAttributeHeaders({ 'ce-id': 'Euro%20%E2%82%AC%20%F0%9F%98%80' });
  assert.deepEqual(decoded, { ok: true, value: { 'ce-id': 'Euro € 😀' } });
});

test('space, double quote and percent are encoded, other printable ASCII is not', () => {
  assert.equal(percentEncode('a b"c%d'), 'a%20b%22c%25d');
  assert.equal(percentEncode("!#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"), "!#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");
  assert.equal(percentEncode('tab\tnewline\n\u007f\u0085'), 'tab%09newline%0A%7F%C2%85');
});

test('non-ASCII ids arrive as the sender wrote them, percent-encoded or (from a sender that does not encode) as raw UTF-8', () => {
  for (const id of ['café-1', 'ид-события', '事件-42', 'emoji-😀', 'a b"c%d']) {
    const encoded = receiveEvent({ headers: { ...ping, 'ce-id': percentEncode(id) }, body: '' });
    assert.ok(encoded.ok, JSON.stringify(encoded));
    assert.equal(encoded.value.event.id, id, `percent-encoded ${id}`);
    if (!/[ "%]/.test(id)) {
      const raw = receiveEvent({ headers: { ...ping, 'ce-id': rawUtf8(id) }, body: '' });
      assert.ok(raw.ok, JSON.stringify(raw));
      assert.equal(raw.value.event.id, id, `raw UTF-8 ${id}: read as UTF-8, not as Latin-1 (${JSON.stringify(rawUtf8(id))})`);
    }
  }
});

test('lower-case hex is accepted, unnecessary encoding is accepted, extensions are decoded too', () => {
  const received = receiveEvent({ headers: { ...ping, 'ce-id': 'caf%c3%a9', 'ce-team': '%70%61%79' }, body: '' });
  assert.ok(received.ok, JSON.stringify(received));
  assert.equal(received.value.event.id, 'café');
  assert.equal(received.value.event['team'], 'pay');
});

test('a double-quoted value is unquoted first, as older senders wrote them', () => {
  assert.deepEqual(decodeAttributeHeaders({ 'ce-id': '"a b \\"c\\" %41"' }), { ok: true, value: { 'ce-id': 'a b "c" A' } });
});

test('invalid encodings are refused, each naming its header', () => {
  const cases: Array<[string, RegExp]> = [
    // The binding's own example of what MUST be rejected: an overlong encoding of U+0020.
    ['%C0%A0', /^header ce-id: percent-encodes bytes that are not valid UTF-8$/],
    ['%E2%82', /^header ce-id: percent-encodes bytes that are not valid UTF-8$/],
    ['%ED%A0%80', /^header ce-id: percent-encodes bytes that are not valid UTF-8$/],
    ['50%', /^header ce-id: has "%" at character 3 not followed by two hexadecimal digits/],
    ['%zz', /^header ce-id: has "%" at character 1 not followed by two hexadecimal digits/],
    ['caf\u00e9', /^header ce-id: holds bytes that are not UTF-8/],
    ['"unterminated', /^header ce-id: starts with a double quote but is not a quoted string/],
  ];
  for (const [value, problem] of cases) {
    const decoded = decodeAttributeHeaders({ 'ce-id': value, 'content-type': 'application/json' });
    assert.equal(decoded.ok, false, value);
    assert.equal(decoded.problems.length, 1, value);
    assert.match(decoded.problems[0]!, problem, value);
    const received = receiveEvent({ headers: { ...ping, 'ce-id': value }, body: '' });
    assert.equal(received.ok, false, value);
  }
});

test('other headers are left alone, content-type included', () => {
  const decoded = decodeAttributeHeaders({ 'content-type': 'application/json; x=%41', 'x-request-id': '%41' });
  assert.deepEqual(decoded, { ok: true, value: { 'content-type': 'application/json; x=%41', 'x-request-id': '%41' } });
});

test('what encodeAttributeHeaders writes, receiveEvent reads back: a reply with a non-ASCII id survives the round trip', () => {
  const event = createPingEvent({ namespace: 'promsnap', name: 'p', id: 'événement 😀 "quoted" 100%', time: '2026-11-25T10:00:00Z' });
  const headers = encodeAttributeHeaders(HTTP.binary(event).headers);
  // Every value is printable ASCII, so Node can send it as it is.
  for (const value of Object.values(headers)) assert.match(value, /^[\x21-\x7e ;=/.+-]*$/);
  assert.equal(headers['ce-id'], '%C3%A9v%C3%A9nement%20%F0%9F%98%80%20%22quoted%22%20100%25');
  const received = receiveEvent({ headers, body: '' });
  assert.ok(received.ok, JSON.stringify(received));
  assert.equal(received.value.event.id, event.id);
});
