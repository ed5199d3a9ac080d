import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HTTP } from 'cloudevents';
import { EventValidationError, PING_EVENT_TYPE, createPingEvent, parsePingSource, pingSource, validatePingEvent } from '../src/index.js';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('createPingEvent sends what Knative mtping sends in binary mode', () => {
  const before = Date.now();
  const event = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', data: { queries: ['up'] } });
  const message = HTTP.binary(event);
  assert.equal(message.headers['ce-specversion'], '1.0');
  assert.equal(message.headers['ce-type'], 'dev.knative.sources.ping');
  assert.equal(message.headers['ce-source'], '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule');
  assert.match(String(message.headers['ce-id']), uuid);
  const sent = Date.parse(String(message.headers['ce-time']));
  assert.ok(sent >= before && sent <= Date.now(), 'time is the send time');
  assert.equal(message.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(String(message.body)), { queries: ['up'] });
});

test('every tick gets its own id, and given id and time are kept', () => {
  const a = createPingEvent({ namespace: 'promsnap', name: 'p' });
  const b = createPingEvent({ namespace: 'promsnap', name: 'p' });
  assert.notEqual(a.id, b.id);
  const fixed = createPingEvent({ namespace: 'promsnap', name: 'p', id: 'tick-1', time: '2026-11-25T10:00:00Z' });
  assert.equal(fixed.id, 'tick-1');
  assert.equal(fixed.time, '2026-11-25T10:00:00.000Z');
});

test('a ping without data has no data and no datacontenttype, as a PingSource without spec.data', () => {
  const event = createPingEvent({ namespace: 'promsnap', name: 'p' });
  assert.equal(event.data, undefined);
  assert.equal(event.datacontenttype, undefined);
  const checked = validatePingEvent(event);
  assert.ok(checked.ok);
  assert.deepEqual(checked.value.data, {});
});

test('ceOverrides extensions become attributes', () => {
  const event = createPingEvent({ namespace: 'promsnap', name: 'p', extensions: { team: 'sre' } });
  assert.equal(event['team'], 'sre');
  assert.equal(HTTP.binary(event).headers['ce-team'], 'sre');
});

test('createPingEvent refuses bad input and lists every problem', () => {
  assert.throws(
    () => createPingEvent({ namespace: 'Not_A_Namespace', name: 'p', data: { queries: [], extra: true } as never }),
    (err: unknown) => {
      assert.ok(err instanceof EventValidationError);
      assert.equal(err.problems.length, 3, err.message);
      assert.match(err.message, /not a PingSource/);
      assert.match(err.message, /data has unknown property "extra"/);
      assert.match(err.message, /data\.queries must NOT have fewer than 1 items/);
      return true;
    },
  );
  assert.throws(() => createPingEvent({ namespace: 'promsnap', name: 'p', time: 'yesterday' }), /time "yesterday" is not a valid date/);
});

test('validatePingEvent reports every problem of a wrong event at once', () => {
  const checked = validatePingEvent({
    specversion: '1.0',
    id: 'x'.repeat(201),
    type: 'com.example.other',
    source: 'https://example.com',
    datacontenttype: 'application/json',
    data: { queries: ['up', 7, ''], query: 'up' },
  });
  assert.equal(checked.ok, false);
  assert.deepEqual(checked.problems, [
    'type "com.example.other" is not accepted here: expected dev.knative.sources.ping',
    'source "https://example.com" is not a PingSource: expected /apis/v1/namespaces/<namespace>/pingsources/<name>',
    'id is too long for an object key: it takes 201 characters there (each character other than A-Z, a-z, 0-9 and ._~- takes 3 per UTF-8 byte): at most 200 are accepted',
    'time is required: the snapshot is taken at the event time, so a redelivery captures the same instant',
    'data has unknown property "query"',
    'data.queries[1] must be of type string',
    'data.queries[2] must NOT have fewer than 1 characters',
    'data.queries[2] must match pattern "\\S"',
  ]);
});

test('ping data given as JSON text (binary mode with an unparsed content type) is parsed', () => {
  const base = { specversion: '1.0', id: '1', type: PING_EVENT_TYPE, source: pingSource('a', 'b'), time: '2026-11-25T10:00:00Z' };
  const ok = validatePingEvent({ ...base, datacontenttype: 'application/json; charset=utf-8', data: '{"queries":["up"]}' });
  assert.ok(ok.ok);
  assert.deepEqual(ok.value.data, { queries: ['up'] });
  const bad = validatePingEvent({ ...base, datacontenttype: 'application/json', data: '{"queries":' });
  assert.equal(bad.ok, false);
  assert.match(bad.problems[0]!, /^data is not valid JSON/);
  const text = validatePingEvent({ ...base, datacontenttype: 'text/plain', data: 'hello' });
  assert.equal(text.ok, false);
  assert.match(text.problems[0]!, /must be application\/json/);
});

test('PingSource sources name their namespace and PingSource', () => {
  assert.deepEqual(parsePingSource('/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule'), {
    namespace: 'promsnap',
    name: 'snapshot-schedule',
  });
  assert.equal(parsePingSource('/apis/v1/namespaces/promsnap/apiserversources/x'), undefined);
  assert.equal(parsePingSource('/apis/v1/namespaces/promsnap/pingsources/'), undefined);
});
