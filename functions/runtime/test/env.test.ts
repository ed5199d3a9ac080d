import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, EnvReader } from '../src/env.js';

test('unset and blank variables take their defaults; values are trimmed', () => {
  const read = new EnvReader({ BLANK: '  ', NAME: ' snapshot ' });
  assert.equal(read.string('UNSET', 'fallback'), 'fallback');
  assert.equal(read.string('BLANK', 'fallback'), 'fallback');
  assert.equal(read.string('NAME'), 'snapshot');
  assert.equal(read.integer('UNSET', 7), 7);
  assert.equal(read.boolean('UNSET', true), true);
  assert.deepEqual(read.done({ ok: true }), { ok: true });
});

test('each reader accepts what its type allows', () => {
  const read = new EnvReader({ N: '-12', YES: 'On', NO: '0', LEVEL: 'warn', URL: 'https://prometheus:9090//' });
  assert.equal(read.integer('N', 0, { min: -20, max: 0 }), -12);
  assert.equal(read.boolean('YES', false), true);
  assert.equal(read.boolean('NO', true), false);
  assert.equal(read.oneOf('LEVEL', ['info', 'warn'] as const, 'info'), 'warn');
  assert.equal(read.url('URL'), 'https://prometheus:9090', 'trailing slashes go');
  read.done(undefined);
});

test('every problem is collected, in reading order, each naming its variable, and thrown by done()', () => {
  const read = new EnvReader({ N: '1.5', BIG: '11', FLAG: 'maybe', LEVEL: 'loud', URL: 'ftp://x', BARE: 'prometheus:9090' });
  read.integer('N', 0);
  read.integer('BIG', 0, { min: 0, max: 10 });
  read.boolean('FLAG', false);
  read.oneOf('LEVEL', ['info'] as const, 'info');
  read.url('URL');
  read.url('BARE');
  read.url('MISSING_URL');
  read.required('SECRET', 'the S3 secret key');
  read.problem('A (1) must be below B (0)');
  assert.throws(
    () => read.done({}),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => /^[A-Z_]+/.exec(p)?.[0]),
        ['N', 'BIG', 'FLAG', 'LEVEL', 'URL', 'BARE', 'MISSING_URL', 'SECRET', 'A'],
      );
      assert.match(err.problems[1]!, /^BIG="11" must be a whole number from 0 to 10$/);
      assert.match(err.problems[7]!, /^SECRET is required \(the S3 secret key\)$/);
      assert.match(err.message, /^invalid configuration:\n {2}- N=/);
      return true;
    },
  );
});
