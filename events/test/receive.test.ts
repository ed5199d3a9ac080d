import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HTTP } from 'cloudevents';
import { createPingEvent, receiveEvent } from '../src/index.js';

const knativeHeaders = {
  // As recorded from Knative's mtping adapter: Go SDK, binary mode, nanosecond time.
  'ce-specversion': '1.0',
  'ce-id': '2f2c6b8e-1a8f-4a87-9d3c-0b1f4c3f9d11',
  'ce-source': '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule',
  'ce-type': 'dev.knative.sources.ping',
  'ce-time': '2026-11-25T10:00:00.123456789Z',
  'content-type': 'application/json',
};

test('a binary-mode ping from Knative is received with its data parsed', () => {
  const received = receiveEvent({ headers: knativeHeaders, body: '{"queries":["up"]}' });
  assert.ok(received.ok, JSON.stringify(received));
  assert.equal(received.value.mode, 'binary');
  assert.equal(received.value.event.id, knativeHeaders['ce-id']);
  assert.equal(received.value.event.time, '2026-11-25T10:00:00.123Z');
  assert.deepEqual(received.value.event.data, { queries: ['up'] });
});

test('a structured-mode event is received, content-type parameters or not', () => {
  const event = createPingEvent({ namespace: 'promsnap', name: 'p', data: { queries: ['up'] } });
  for (const contentType of ['application/cloudevents+json', 'application/cloudevents+json; charset=UTF-8']) {
    const received = receiveEvent({ headers: { 'Content-Type': contentType }, body: String(HTTP.structured(event).body) });
    assert.ok(received.ok, JSON.stringify(received));
    assert.equal(received.value.mode, 'structured');
    assert.equal(received.value.event.id, event.id);
    assert.deepEqual(received.value.event.data, { queries: ['up'] });
  }
});

test('binary JSON data with a charset parameter is still parsed', () => {
  const received = receiveEvent({ headers: { ...knativeHeaders, 'content-type': 'application/json; charset=utf-8' }, body: '{"queries":["up"]}' });
  assert.ok(received.ok);
  assert.deepEqual(received.value.event.data, { queries: ['up'] });
});

test('a missing time stays missing instead of becoming "now"', () => {
  const { 'ce-time': _, ...headers } = knativeHeaders;
  const received = receiveEvent({ headers, body: '' });
  assert.ok(received.ok);
  assert.equal(received.value.event.time, undefined);
  assert.equal(received.value.event.data, '');
});

test('an unparsable time is a problem, not "now"', () => {
  const received = receiveEvent({ headers: { ...knativeHeaders, 'ce-time': 'yesterday' }, body: '' });
  assert.equal(received.ok, false);
  assert.deepEqual(received.problems, ['time "yesterday" is not an RFC 3339 timestamp']);
});

test('a structured event without id is refused instead of getting a made-up one', () => {
  const received = receiveEvent({
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({ specversion: '1.0', type: 't', time: '2026-11-25T10:00:00Z', data: {} }),
  });
  assert.equal(received.ok, false);
  assert.deepEqual(received.problems, ['id is required', 'source is required']);
});

test('every missing required attribute of a binary event is listed', () => {
  const received = receiveEvent({ headers: { 'ce-specversion': '1.0' }, body: '' });
  assert.equal(received.ok, false);
  assert.deepEqual(received.problems, ['id is required', 'source is required', 'type is required']);
});

test('requests that are not CloudEvents, broken JSON and batches are refused with a reason', () => {
  const plain = receiveEvent({ headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(plain.ok, false);
  assert.match(plain.problems[0]!, /^not a CloudEvent/);
  const broken = receiveEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: '{"id":' });
  assert.equal(broken.ok, false);
  assert.match(broken.problems[0]!, /^structured event body is not valid JSON/);
  const batch = receiveEvent({ headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '[]' });
  assert.equal(batch.ok, false);
  assert.match(batch.problems[0]!, /batched CloudEvents are not accepted/);
  const badData = receiveEvent({ headers: knativeHeaders, body: '{"queries":' });
  assert.equal(badData.ok, false);
  assert.match(badData.problems[0]!, /not valid JSON/);
});

test('an old specversion is refused', () => {
  const received = receiveEvent({ headers: { ...knativeHeaders, 'ce-specversion': '0.3' }, body: '' });
  assert.equal(received.ok, false);
  assert.deepEqual(received.problems, ['specversion "0.3" is not supported: expected 1.0']);
});

test('a time that names no real instant is refused, though JavaScript would roll it over', () => {
  // Date.parse takes 2026-02-30 as 2 March; Go (Prometheus, Knative) refuses it, and so does this.
  for (const time of [
    '2026-02-30T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-04-31T10:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T10:60:00Z',
    '2026-12-31T23:59:60Z',
    '2026-01-01T10:00:00+24:00',
  ]) {
    const received = receiveEvent({ headers: { ...knativeHeaders, 'ce-time': time }, body: '' });
    assert.equal(received.ok, false, time);
    assert.deepEqual(received.problems, [`time ${JSON.stringify(time)} is not an RFC 3339 timestamp`], time);
  }
  for (const time of ['2024-02-29T00:00:00Z', '2026-12-31T23:59:59.999999999Z', '2026-06-30T10:00:00+05:30', '0001-01-01T00:00:00Z']) {
    assert.ok(receiveEvent({ headers: { ...knativeHeaders, 'ce-time': time }, body: '' }).ok, time);
  }
});
