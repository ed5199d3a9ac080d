// Series selectors (`up`, `{__name__!=""}`, `http_requests_total{job="api",code=~"5.."}`) read into
// label matchers and written back, so that a range export can narrow one selector into parts by adding
// matchers to it. Only selectors are read: a range export takes raw samples, which only a selector
// (with a range appended) asks Prometheus for.

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
}

export class SelectorError extends Error {
  constructor(selector: string, problem: string) {
    super(`${JSON.stringify(selector)} is not a series selector: ${problem}`);
    this.name = 'SelectorError';
  }
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** The matchers a selector stands for; its metric name becomes `__name__="..."`. */
export function parseSelector(text: string): Matcher[] {
  let rest = text.trim();
  const fail = (problem: string): never => {
    throw new SelectorError(text, problem);
  };
  const matchers: Matcher[] = [];
  const name = metricName.exec(rest);
  if (name) {
    matchers.push({ name: '__name__', op: '=', value: name[0] });
    rest = rest.slice(name[0].length).trimStart();
  }
  if (rest.startsWith('{')) {
    rest = rest.slice(1).trimStart();
    while (!rest.startsWith('}')) {
      if (rest === '') fail('it has no closing }');
      let label: string;
      if (rest[0] === '"' || rest[0] === "'" || rest[0] === '`') {
        const [quoted, after] = readString(rest, fail);
        rest = after.trimStart();
        // Prometheus 3: a quoted string alone names the metric (`{"my.metric"}`); before an operator, a label.
        if (rest.startsWith(',') || rest.startsWith('}')) {
          matchers.push({ name: '__name__', op: '=', value: quoted });
          rest = rest.startsWith(',') ? rest.slice(1).trimStart() : rest;
          continue;
        }
        label = quoted;
      } else {
        const bare = labelName.exec(rest);
        if (!bare) fail(`expected a label name at ${JSON.stringify(rest.slice(0, 20))}`);
        label = bare![0];
        rest = rest.slice(label.length).trimStart();
      }
      const op = (['=~', '!~', '!=', '='] as const).find((o) => rest.startsWith(o));
      if (!op) fail(`expected =, !=, =~ or !~ after label ${label}`);
      rest = rest.slice(op!.length).trimStart();
      const [value, after] = readString(rest, fail);
      matchers.push({ name: label, op: op!, value });
      rest = after.trimStart();
      if (rest.startsWith(',')) rest = rest.slice(1).trimStart();
      else if (!rest.startsWith('}')) fail(`expected , or } at ${JSON.stringify(rest.slice(0, 20))}`);
    }
    rest = rest.slice(1).trimStart();
  }
  if (rest !== '') fail(`unexpected ${JSON.stringify(rest.slice(0, 20))} (functions, ranges and operators are not selectors)`);
  if (matchers.length === 0) fail('it names no metric and no matcher');
  return matchers;
}

/** A PromQL string literal at the start of text: its value, and the text after it. */
function readString(text: string, fail: (problem: string) => never): [string, string] {
  const quote = text[0];
  if (quote !== '"' && quote !== "'" && quote !== '`') return fail(`expected a quoted string at ${JSON.stringify(text.slice(0, 20))}`);
  let i = 1;
  while (i < text.length && text[i] !== quote) i += quote !== '`' && text[i] === '\\' ? 2 : 1;
  if (i >= text.length) return fail('a string is not closed');
  const body = text.slice(1, i);
  if (quote === '`') return [body, text.slice(i + 1)];
  // Go's escapes, as PromQL takes them, are JSON's for every selector we have seen; others are refused.
  const json = quote === '"' ? body : body.replace(/\\'/g, "'").replace(/"/g, '\\"');
  try {
    return [JSON.parse(`"${json}"`) as string, text.slice(i + 1)];
  } catch {
    return fail(`cannot read the string ${text.slice(0, i + 1)}`);
  }
}

/** Matchers written as a selector: `{__name__=~"a|b",job="x"}`. */
export function renderSelector(matchers: readonly Matcher[]): string {
  return `{${matchers.map((m) => `${labelName.test(m.name) && labelName.exec(m.name)![0] === m.name ? m.name : JSON.stringify(m.name)}${m.op}${JSON.stringify(m.value)}`).join(',')}}`;
}

// RE2's metacharacters: escaped, a value matches only itself.
const regexMeta = /[\\.+*?()|[\]{}^$]/g;

/**
 * A regex matching exactly the given values (Prometheus anchors label regexes at both ends); with
 * `orAbsent`, also the empty value, which is how a series without the label matches.
 */
export function valuesRegex(values: readonly string[], orAbsent = false): string {
  return [...(orAbsent ? [''] : []), ...values.map((v) => v.replace(regexMeta, '\\$&'))].join('|');
}
