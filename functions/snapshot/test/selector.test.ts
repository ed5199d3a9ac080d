import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSelector, renderSelector, SelectorError, valuesRegex } from '../src/selector.js';

test('selectors read into matchers and write back as selectors Prometheus reads the same way', () => {
  assert.deepEqual(parseSelector('{__name__!=""}'), [{ name: '__name__', op: '!=', value: '' }]);
  assert.deepEqual(parseSelector('up'), [{ name: '__name__', op: '=', value: 'up' }]);
  assert.deepEqual(parseSelector(' http_requests_total { job = "api" , code=~\'5..\', path!~`/a\\b` , } '), [
    { name: '__name__', op: '=', value: 'http_requests_total' },
    { name: 'job', op: '=', value: 'api' },
    { name: 'code', op: '=~', value: '5..' },
    { name: 'path', op: '!~', value: '/a\\b' },
  ]);
  assert.deepEqual(parseSelector('{"my.metric", "a.b"="say \\"hi\\""}'), [
    { name: '__name__', op: '=', value: 'my.metric' },
    { name: 'a.b', op: '=', value: 'say "hi"' },
  ]);
  assert.equal(renderSelector(parseSelector('{"my.metric", "a.b"="x", job="y"}')), '{__name__="my.metric","a.b"="x",job="y"}');
});

test('anything but a selector is refused, saying why', () => {
  for (const [text, pattern] of [
    ['rate(x[5m])', /functions, ranges and operators/],
    ['x[5m]', /functions, ranges and operators/],
    ['sum(x)', /functions/],
    ['{job="a"', /expected , or }/],
    ['{job="a",', /no closing/],
    ['{job}', /expected =, !=, =~ or !~/],
    ['{job="a}', /not closed/],
    ['', /no metric and no matcher/],
  ] as const) {
    assert.throws(
      () => parseSelector(text),
      (err: unknown) => err instanceof SelectorError && pattern.test(err.message),
      text,
    );
  }
});

test('a values regex matches exactly its values, and with orAbsent the missing label too', () => {
  const regex = valuesRegex(['a.b', 'c|d', 'e*', '(f)'], true);
  assert.equal(regex, '|a\\.b|c\\|d|e\\*|\\(f\\)');
  const re = new RegExp(`^(?:${regex})$`);
  for (const v of ['', 'a.b', 'c|d', 'e*', '(f)']) assert.ok(re.test(v), v);
  for (const v of ['axb', 'c', 'd', 'eee', 'f']) assert.ok(!re.test(v), v);
});
