// Runs a Kubernetes Job of the manifests on this machine, the way the kubelet would run its pod: init
// containers one after another, then the containers; each container's command is a tool installed
// here (mc for the MinIO setup Job), its env and $(VAR) args built from the rendered Secrets, its
// volumes (emptyDir, configMap, secret) as folders under a work directory, and cluster addresses
// pointed at the local processes. So the bucket, policy and user are made by the manifests' own steps.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LocalNetwork } from './addresses.js';
import { configMapData, expandReferences, secretData, type KubeObject as ManifestObject } from '../manifests/index.js';
import { containerEnv } from './pod-env.js';
import { CommandError, runCommand } from '../tools/command.js';
import { findTool } from '../tools/find.js';
import { workloadSpec, type KubeObject } from './workloads.js';

export interface JobStep {
  container: string;
  command: string[];
}

export interface JobRunOptions {
  objects: KubeObject[];
  network: LocalNetwork;
  /** Volumes are created under here, one folder per volume. */
  workDir: string;
  /** Commands the Job may run: the first word of each container's command must be one of them. */
  tools: readonly string[];
  onStep?: (step: JobStep) => void;
}

/** Replaces each mount path at the start of a word (or after `=`) with the local folder standing in for it. */
function remapPaths(text: string, mounts: Array<{ mountPath: string; local: string }>): string {
  // Longest first, so /config/sub is not taken for /config.
  const sorted = [...mounts].sort((a, b) => b.mountPath.length - a.mountPath.length);
  for (const { mountPath, local } of sorted) {
    const escaped = mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    text = text.replace(new RegExp(`(^|[=:,\\s])${escaped}(?=$|/|[\\s,:])`, 'g'), `$1${local}`);
  }
  return text;
}

export async function runJob(job: KubeObject, options: JobRunOptions): Promise<JobStep[]> {
  const namespace = job.metadata.namespace ?? 'default';
  const podSpec = workloadSpec(job).template?.spec;
  const jobDir = path.join(options.workDir, job.metadata.name);
  // A Job's pod starts with fresh emptyDirs every time.
  await rm(jobDir, { recursive: true, force: true });

  const volumes = new Map<string, string>();
  for (const volume of podSpec?.volumes ?? []) {
    const local = path.join(jobDir, volume['name']);
    await mkdir(local, { recursive: true });
    const source = volume['configMap']
      ? { kind: 'ConfigMap' as const, name: volume['configMap'].name }
      : volume['secret']
        ? { kind: 'Secret' as const, name: volume['secret'].secretName }
        : undefined;
    if (source) {
      const objects = options.objects as unknown as ManifestObject[];
      let data: Record<string, string>;
      try {
        data = source.kind === 'Secret' ? secretData(objects, source.name, namespace) : configMapData(objects, source.name, namespace);
      } catch {
        throw new Error(`Job ${job.metadata.name}: volume ${volume['name']} needs ${source.kind} ${namespace}/${source.name}, which is not in the manifests`);
      }
      for (const [key, value] of Object.entries(data)) await writeFile(path.join(local, key), value, { mode: 0o600 });
    } else if (!volume['emptyDir']) {
      throw new Error(`Job ${job.metadata.name}: volume ${volume['name']} is neither emptyDir, configMap nor secret; it has no local stand-in`);
    }
    volumes.set(volume['name'], local);
  }

  const containers = [...(podSpec?.initContainers ?? []), ...(podSpec?.containers ?? [])];
  const steps: JobStep[] = [];
  for (const container of containers) {
    const mounts = (container['volumeMounts'] ?? []).map((m) => {
      const local = volumes.get(m.name);
      if (!local) throw new Error(`Job ${job.metadata.name}: container ${container['name']} mounts unknown volume ${m.name}`);
      return { mountPath: m.mountPath, local };
    });
    const env = containerEnv(
      {
        name: container['name'] ?? '',
        image: container['image'],
        ports: [],
        env: container['env'] ?? [],
        envFrom: container['envFrom'] ?? [],
        args: [],
        init: false,
      },
      { objects: options.objects, namespace, network: options.network },
    );
    for (const key of Object.keys(env)) env[key] = remapPaths(env[key]!, mounts);
    const words = [...(container['command'] ?? []), ...(container['args'] ?? [])].map((word) =>
      options.network.rewriteUrl(remapPaths(expandReferences(word, env), mounts), { namespace }),
    );
    const [tool, ...args] = words;
    if (!tool || !options.tools.includes(tool)) {
      throw new Error(
        `Job ${job.metadata.name}: container ${container['name']} runs ${JSON.stringify(tool ?? container['image'])}, which has no local stand-in (known: ${options.tools.join(', ')})`,
      );
    }
    const step = { container: String(container['name']), command: words };
    options.onStep?.(step);
    try {
      await runCommand(findTool(tool), args, { env: { PATH: process.env['PATH'] ?? '', HOME: jobDir, ...env }, cwd: jobDir, timeoutMs: 120_000 });
    } catch (err) {
      const detail = err instanceof CommandError ? err.result.stderr || err.result.stdout : (err as Error).message;
      throw new Error(`Job ${job.metadata.name}: step ${container['name']} (${tool} ${args[0] ?? ''}) failed: ${detail.trim()}`, { cause: err });
    }
    steps.push(step);
  }
  return steps;
}
