// Part 3, start-up: from spawn to the first 200 from /readyz, for each function as compiled
// JavaScript (what the image runs) and under tsx (what `npm run snapshot`/`simulation` run).
// Variants are interleaved; the figure per variant is the median.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../platform/tools/ports.js';
import type { Build } from './build.js';
import type { ImageEnvs } from './image-env.js';
import { median, msSince } from './stats.js';

export interface StartupFigures {
  name: string;
  fn: 'snapshot' | 'simulation';
  runtime: 'compiled' | 'tsx';
  ms: number;
}

/** Poll interval: short enough to resolve a few ms, long enough not to steal the CPU it measures. */
const pollMs = 5;

function readyz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/readyz', agent: false, timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function timeToReady(node: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, port: number): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(node, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = once(child, 'exit');
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode} before ready: ${stderr}`);
      if (await readyz(port)) return msSince(start);
      if (msSince(start) > 60_000) throw new Error(`${args.join(' ')} not ready after 60 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

export async function benchStartup(options: {
  node: string;
  build: Build;
  runs: number;
  /** Each function's image environment, under tsx as compiled, so the runtime is the only difference. */
  imageEnvs: ImageEnvs;
  log: (line: string) => void;
}): Promise<StartupFigures[]> {
  const fnEnv = {
    snapshot: {
      // Start-up never talks to either: addresses only have to be valid.
      PROMETHEUS_URL: 'http://127.0.0.1:9',
      S3_ENDPOINT: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench-secret',
    },
    simulation: {},
  };
  const variants = (['snapshot', 'simulation'] as const).flatMap((fn) =>
    (['compiled', 'tsx'] as const).map((runtime) => {
      const source = `functions/${fn}/src/server.ts`;
      const args = runtime === 'compiled' ? [options.build.js(source)] : ['--import', 'tsx', path.join(options.build.sourceRoot, source)];
      return { fn, runtime, args, times: [] as number[] };
    }),
  );
  for (let run = 0; run < options.runs; run++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + run) % variants.length]!;
      const port = await freePort();
      v.times.push(
        await timeToReady(
          options.node,
          v.args,
          options.build.sourceRoot,
          { ...process.env, ...options.imageEnvs[v.fn], ...fnEnv[v.fn], PORT: String(port) },
          port,
        ),
      );
    }
  }
  return variants.map((v) => {
    const ms = median(v.times);
    options.log(`  ${v.fn} ${v.runtime}: ${ms.toFixed(0)} ms (runs: ${v.times.map((t) => t.toFixed(0)).join(', ')})`);
    return { name: `${v.fn}_startup${v.runtime === 'tsx' ? '_tsx' : ''}_ms`, fn: v.fn, runtime: v.runtime, ms };
  });
}
