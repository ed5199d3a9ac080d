// TSDB blocks from OpenMetrics text, by Prometheus's own importer, and the Prometheus that serves them.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { CommandError, runCommand } from '../../platform/tools/command.js';
import { findTool } from '../../platform/tools/find.js';
import { startPrometheus, type RunningPrometheus } from '../../platform/tools/prometheus.js';
import { exitCodes, RestoreError } from './errors.js';

/** The TSDB folder of a restore's data dir (where startPrometheus keeps it too). */
export function tsdbDir(dataDir: string): string {
  return path.join(dataDir, 'tsdb');
}

/** Whether the data dir already holds a TSDB (blocks or a write-ahead log). */
export async function holdsTsdb(dataDir: string): Promise<boolean> {
  const entries = await readdir(tsdbDir(dataDir)).catch(() => [] as string[]);
  return entries.some((e) => e === 'wal' || /^[0-9A-HJKMNP-TV-Z]{26}$/.test(e));
}

/** `promtool tsdb create-blocks-from openmetrics FILE DATA_DIR/tsdb`. */
export async function importOpenMetrics(file: string, dataDir: string): Promise<void> {
  try {
    await runCommand(findTool('promtool'), ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', file, tsdbDir(dataDir)]);
  } catch (err) {
    const detail = err instanceof CommandError ? err.message : String(err);
    throw new RestoreError([`promtool could not import ${file}: ${detail}`], exitCodes.failed, { cause: err });
  }
}

/**
 * A Prometheus serving the restored TSDB: no scrape jobs, and a retention long enough that it does
 * not delete the old blocks it was started for.
 */
export async function serveTsdb(dataDir: string, port: number | undefined): Promise<RunningPrometheus> {
  try {
    return await startPrometheus({
      config: '# Serves a restored TSDB: nothing is scraped.\nglobal:\n  scrape_interval: 1m\n',
      dataDir,
      retention: '100y',
      ...(port !== undefined ? { port } : {}),
    });
  } catch (err) {
    throw new RestoreError([`Prometheus could not serve ${tsdbDir(dataDir)}: ${(err as Error).message}`], exitCodes.failed, { cause: err });
  }
}
