import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDeadLetterRecord, createPingEvent, deadLetterRecord, knativeError, receiveEvent } from '../src/index.js';

const body = JSON.stringify({ error: 'Prometheus is unreachable; the delivery will be retried' });

test('a dead letter keeps the whole event and decodes Knative error attributes', () => {
  const ping = createPingEvent({ namespace: 'promsnap', name: 'p', data: { queries: ['up'] }, id: 'tick-1' });
  // Knative adds its error attributes to the event it dead-letters, as ce-* headers in binary mode.
  const received = receiveEvent({
    headers: {
      'ce-specversion': '1.0',
      'ce-id': ping.id,
      'ce-type': ping.type,
      'ce-source': ping.source,
      'ce-time': ping.time!,
      'ce-knativeerrorcode': '503',
      'ce-knativeerrordest': 'http://snapshot.promsnap.svc.cluster.local',
      'ce-knativeerrordata': Buffer.from(body).toString('base64'),
      'content-type': 'application/json',
    },
    body: '{"queries":["up"]}',
  });
  assert.ok(received.ok, JSON.stringify(received));
  const record = deadLetterRecord(received.value.event, new Date('2026-11-25T10:00:05Z'));
  assert.deepEqual(record.error, {
    code: 503,
    destination: 'http://snapshot.promsnap.svc.cluster.local',
    data: Buffer.from(body).toString('base64'),
    body,
  });
  assert.equal(record.event['id'], 'tick-1');
  assert.equal(record.event['knativeerrorcode'], '503');
  assert.deepEqual(record.event['data'], { queries: ['up'] });
  assert.deepEqual(checkDeadLetterRecord(JSON.parse(JSON.stringify(record))), []);
});

test('a body Knative truncated mid-character still decodes, binary bodies do not', () => {
  const text = 'é'.repeat(600);
  const truncated = Buffer.from(text).toString('base64').slice(0, 1024);
  const error = knativeError({ specversion: '1.0', id: '1', source: 's', type: 't', knativeerrordata: truncated });
  assert.ok(error.body !== null && error.body.length > 300 && /^é+$/.test(error.body), String(error.body));
  const binary = knativeError({ specversion: '1.0', id: '1', source: 's', type: 't', knativeerrordata: Buffer.from([0, 1, 2, 255]).toString('base64') });
  assert.equal(binary.body, null);
  const none = knativeError({ specversion: '1.0', id: '1', source: 's', type: 't' });
  assert.deepEqual(none, { code: null, destination: null, data: null, body: null });
});
