// Starts a real Prometheus server (the pinned build on PATH) with a given configuration.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { findTool } from './find.js';
import { freePort } from './ports.js';
import { startProcess, type ManagedProcess } from './process.js';

export interface PrometheusOptions {
  /** prometheus.yml content. */
  config: string;
  /** Extra files written beside prometheus.yml (rule files, file_sd target files). */
  files?: Record<string, string>;
  dataDir: string;
  port?: number;
  retention?: string;
  /** More command-line flags (for example --query.max-samples=N, --web.enable-remote-write-receiver). */
  flags?: string[];
  onLine?: (line: string) => void;
}

export interface RunningPrometheus {
  url: string;
  port: number;
  process: ManagedProcess;
  configDir: string;
  stop(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const binary = findTool('prometheus');
  const port = options.port ?? (await freePort());
  const configDir = path.join(options.dataDir, 'config');
  await mkdir(configDir, { recursive: true });
  const configFile = path.join(configDir, 'prometheus.yml');
  await writeFile(configFile, options.config);
  for (const [name, content] of Object.entries(options.files ?? {})) {
    await writeFile(path.join(configDir, name), content);
  }
  const url = `http://127.0.0.1:${port}`;
  const process = await startProcess({
    name: 'prometheus',
    command: binary,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(options.dataDir, 'tsdb')}`,
      `--storage.tsdb.retention.time=${options.retention ?? '1d'}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      ...(options.flags ?? []),
    ],
    cwd: configDir,
    readyUrl: `${url}/-/ready`,
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  return {
    url,
    port,
    process,
    configDir,
    stop: async () => {
      await process.stop('SIGTERM', 10_000);
    },
  };
}

/** Runs an instant query against Prometheus's HTTP API and returns its `data.result`. */
export async function queryPrometheus<T = unknown>(url: string, query: string): Promise<T[]> {
  const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query }).toString()}`);
  const body = (await res.json()) as { status: string; data?: { result: T[] }; error?: string };
  if (body.status !== 'success' || !body.data) throw new Error(`query ${query} failed: ${body.error ?? res.status}`);
  return body.data.result;
}
