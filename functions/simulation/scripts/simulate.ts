// npm run simulate -- --url URL -n N [--concurrency C] [--path P ...] [--timeout MS]
// Exit codes: 0 every request was answered (any status), 1 some got no answer, 2 bad usage.
import { parseArgs } from 'node:util';
import { allAnswered, defaultPaths, formatSummary, runLoad, type LoadOptions } from './load.js';

const usage = `usage: npm run simulate -- [--url URL] [-n N] [-c C] [--path PATH ...] [--timeout MS]
  --url          base URL of the simulation service (default http://127.0.0.1:8080, where npm run simulation listens)
  -n, --requests requests per endpoint (default 10)
  -c, --concurrency  requests in flight at once (default 1)
  --path         an endpoint to load, repeatable (default: ${defaultPaths.join(' ')})
  --timeout      per-request limit in milliseconds (default 10000)`;

function fail(message: string): never {
  process.stderr.write(`simulate: ${message}\nRun with --help for usage.\n`);
  process.exit(2);
}

function wholeNumber(flag: string, text: string, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) fail(`${flag} ${JSON.stringify(text)} must be a whole number from 1 to ${max}`);
  return value;
}

function parse(argv: string[]): LoadOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8080' },
        requests: { type: 'string', short: 'n', default: '10' },
        concurrency: { type: 'string', short: 'c', default: '1' },
        path: { type: 'string', multiple: true },
        timeout: { type: 'string', default: '10000' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    fail(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`--url ${JSON.stringify(values.url)} must be http:// or https://`);
  const paths = values.path ?? [...defaultPaths];
  for (const path of paths) if (!path.startsWith('/')) fail(`--path ${JSON.stringify(path)} must start with /`);
  return {
    url: url.href,
    paths,
    requests: wholeNumber('-n', values.requests, 1_000_000),
    concurrency: wholeNumber('--concurrency', values.concurrency, 1_000),
    timeoutMs: wholeNumber('--timeout', values.timeout, 600_000),
  };
}

const options = parse(process.argv.slice(2));
process.stdout.write(`simulate: ${options.requests} request(s) to each of ${options.paths.join(' ')} at ${options.url}, ${options.concurrency} at a time\n`);
const result = await runLoad(options);
process.stdout.write(`${formatSummary(result)}\n`);
process.exitCode = allAnswered(result) ? 0 : 1;
