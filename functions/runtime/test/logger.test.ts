import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../src/logger.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
}

test('one JSON object per line, at or above the level, with the base and call fields', () => {
  const out = capture();
  const log = createLogger({ level: 'info', fields: { service: 'snapshot' }, write: out.write });
  log.debug('hidden');
  log.info('stored', { key: 'a.json' });
  log.error('failed', { key: 'b.json' });
  assert.deepEqual(
    out.lines.map(({ time: _time, ...rest }) => rest),
    [
      { level: 'info', msg: 'stored', service: 'snapshot', key: 'a.json' },
      { level: 'error', msg: 'failed', service: 'snapshot', key: 'b.json' },
    ],
  );
  assert.ok(!Number.isNaN(Date.parse(out.lines[0]!['time'] as string)));
});

test('a child logger adds its fields; errors are logged with name, message, code and cause', () => {
  const out = capture();
  const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  createLogger({ level: 'debug', write: out.write })
    .child({ eventId: 'e1' })
    .warn('query failed', { err: new Error('prometheus unreachable', { cause }) });
  const record = out.lines[0]!;
  assert.equal(record['eventId'], 'e1');
  const err = record['err'] as Record<string, unknown>;
  assert.equal(err['name'], 'Error');
  assert.equal(err['message'], 'prometheus unreachable');
  assert.deepEqual((err['cause'] as Record<string, unknown>)['code'], 'ECONNREFUSED');
});
