// Starts a real MinIO server (the pinned build on PATH) and talks to it with mc.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from './command.js';
import { findTool } from './find.js';
import { freePort } from './ports.js';
import { startProcess, type ManagedProcess } from './process.js';

export interface MinioCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface MinioOptions {
  dataDir: string;
  credentials: MinioCredentials;
  port?: number;
  consolePort?: number;
  /** Further environment for the server (for example MINIO_PROMETHEUS_AUTH_TYPE from a manifest). */
  env?: Record<string, string>;
  onLine?: (line: string) => void;
}

export interface RunningMinio {
  endpoint: string;
  consoleUrl: string;
  port: number;
  credentials: MinioCredentials;
  process: ManagedProcess;
  /** Runs mc with an alias named `local` that points at this server; returns stdout. */
  mc(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startMinio(options: MinioOptions): Promise<RunningMinio> {
  const binary = findTool('minio');
  const port = options.port ?? (await freePort());
  const consolePort = options.consolePort ?? (await freePort());
  const dataDir = path.join(options.dataDir, 'data');
  await mkdir(dataDir, { recursive: true });
  const endpoint = `http://127.0.0.1:${port}`;
  const process = await startProcess({
    name: 'minio',
    command: binary,
    args: ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
    env: {
      ...globalThis.process.env,
      ...options.env,
      MINIO_ROOT_USER: options.credentials.accessKeyId,
      MINIO_ROOT_PASSWORD: options.credentials.secretAccessKey,
      MINIO_BROWSER: 'on',
    },
    readyUrl: `${endpoint}/minio/health/ready`,
    readyTimeoutMs: 60_000,
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  const mcConfigDir = path.join(options.dataDir, 'mc');
  await mkdir(mcConfigDir, { recursive: true });
  const mc = mcClient(endpoint, options.credentials, mcConfigDir);
  return {
    endpoint,
    consoleUrl: `http://127.0.0.1:${consolePort}`,
    port,
    credentials: options.credentials,
    process,
    mc,
    stop: async () => {
      await process.stop('SIGTERM', 10_000);
    },
  };
}

/** An mc runner whose alias `local` points at endpoint, without touching the user's ~/.mc. */
export function mcClient(endpoint: string, credentials: MinioCredentials, configDir: string) {
  const binary = findTool('mc');
  const url = new URL(endpoint);
  url.username = encodeURIComponent(credentials.accessKeyId);
  url.password = encodeURIComponent(credentials.secretAccessKey);
  return async (...args: string[]): Promise<string> => {
    const { stdout } = await runCommand(binary, ['--config-dir', configDir, '--no-color', ...args], {
      env: { ...process.env, MC_HOST_local: url.toString().replace(/\/$/, '') },
    });
    return stdout;
  };
}
