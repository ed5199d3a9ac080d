// A real Prometheus holding exactly a given dataset: the samples are written as OpenMetrics text and
// backfilled with `promtool tsdb create-blocks-from openmetrics` before Prometheus starts, with no
// scrape jobs, so every query answers from that data alone (no staleness markers, no self-scrapes).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../tools/command.js';
import { findTool } from '../tools/find.js';
import { startPrometheus, type RunningPrometheus } from '../tools/prometheus.js';

export interface BackfilledPrometheus {
  prometheus: RunningPrometheus;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Backfills `openMetrics` (ending with `# EOF`) and serves it; `flags` go to Prometheus as they are. */
export async function startBackfilledPrometheus(openMetrics: string, options: { flags?: string[]; retention?: string } = {}): Promise<BackfilledPrometheus> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'promsnap-backfilled-'));
  try {
    const file = path.join(dataDir, 'dataset.om');
    await writeFile(file, openMetrics);
    await mkdir(path.join(dataDir, 'tsdb'), { recursive: true });
    await runCommand(findTool('promtool'), ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', file, path.join(dataDir, 'tsdb')]);
    await rm(file);
    const prometheus = await startPrometheus({
      config: 'global:\n  scrape_interval: 1m\n',
      dataDir,
      retention: options.retention ?? '30d',
      ...(options.flags ? { flags: options.flags } : {}),
    });
    return {
      prometheus,
      url: prometheus.url,
      dataDir,
      async stop() {
        await prometheus.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
