// The floor a snapshot is compared with: the same query fetched by curl (to /dev/null, and piped
// into `mc pipe`, which streams it into the bucket). Nothing can store the answer much faster than
// `curl | mc pipe`. Peak RSS of curl and mc comes from GNU time when it is installed.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../platform/tools/command.js';
import { msSince } from './stats.js';

export interface FloorTools {
  curl: string;
  mc: string;
  /** GNU time, or undefined (then no peak RSS for curl and mc). */
  time: string | undefined;
  mcConfigDir: string;
  /** MC_HOST_local: the bucket's server with credentials, so ~/.mc is never touched. */
  mcHost: string;
}

export interface FloorRun {
  ms: number;
  /** Bytes curl received. */
  bytes: number;
  curlPeakRss: number | undefined;
  mcPeakRss: number | undefined;
}

/** curl's arguments for the snapshot's request: POST form, uncompressed, as the function sends it. */
function curlArgs(prometheusUrl: string, query: string, time: string, output: string): string[] {
  return [
    '-sS',
    '--fail',
    '-H',
    'Accept-Encoding: identity',
    '--data-urlencode',
    `query=${query}`,
    '--data-urlencode',
    `time=${time}`,
    '-o',
    output,
    '-w',
    '%{size_download}\n',
    `${prometheusUrl}/api/v1/query`,
  ];
}

function exec(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return runCommand(command, args, { env });
}

/** The size curl printed last (its -w output) on a stream. */
function lastNumber(text: string): number {
  return Number(text.trim().split('\n').at(-1));
}

async function peakFrom(file: string | undefined): Promise<number | undefined> {
  if (!file) return undefined;
  const kb = Number((await readFile(file, 'utf8')).trim().split('\n').at(-1));
  return Number.isFinite(kb) ? kb * 1024 : undefined;
}

export async function curlToNull(tools: FloorTools, prometheusUrl: string, query: string, time: string): Promise<FloorRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-bench-floor-'));
  try {
    const rssFile = tools.time ? path.join(dir, 'curl.rss') : undefined;
    const curl = [tools.curl, ...curlArgs(prometheusUrl, query, time, '/dev/null')];
    const argv = rssFile ? [tools.time!, '-f', '%M', '-o', rssFile, ...curl] : curl;
    const start = process.hrtime.bigint();
    const { stdout } = await exec(argv[0]!, argv.slice(1), process.env);
    const ms = msSince(start);
    return { ms, bytes: lastNumber(stdout), curlPeakRss: await peakFrom(rssFile), mcPeakRss: undefined };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `curl ... | mc pipe local/<bucket>/<key>`: the answer streamed into the bucket, no Node involved. */
export async function curlToMc(tools: FloorTools, prometheusUrl: string, query: string, time: string, target: string): Promise<FloorRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-bench-floor-'));
  try {
    const curlRss = tools.time ? path.join(dir, 'curl.rss') : undefined;
    const mcRss = tools.time ? path.join(dir, 'mc.rss') : undefined;
    // curl's -w output goes to stderr: its stdout is the pipe.
    const curl = [tools.curl, ...curlArgs(prometheusUrl, query, time, '-'), '-w', '%{stderr}%{size_download}\n'];
    const mc = [tools.mc, '--config-dir', tools.mcConfigDir, '--no-color', '--quiet', 'pipe', `local/${target}`];
    const left = curlRss ? [tools.time!, '-f', '%M', '-o', curlRss, ...curl] : curl;
    const right = mcRss ? [tools.time!, '-f', '%M', '-o', mcRss, ...mc] : mc;
    // bash joins the two argument lists with a real pipe: "${@:1:n}" | "${@:n+1}".
    const script = 'n=$1; shift; set -o pipefail; "${@:1:n}" | "${@:n+1}" >/dev/null';
    const start = process.hrtime.bigint();
    const { stderr } = await exec('bash', ['-c', script, 'bash', String(left.length), ...left, ...right], {
      ...process.env,
      MC_HOST_local: tools.mcHost,
    });
    const ms = msSince(start);
    return { ms, bytes: lastNumber(stderr), curlPeakRss: await peakFrom(curlRss), mcPeakRss: await peakFrom(mcRss) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
