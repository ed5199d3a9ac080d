// The rendered platform: `kubectl kustomize platform`, parsed. The runner reads nothing else, so what
// runs locally is what a cluster would get from `kubectl apply -k platform`.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { findTool } from './processes.js';
import type { KubeObject } from './workloads.js';

const run = promisify(execFile);

export function parseRendered(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered manifests are not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as KubeObject | null;
    if (value) objects.push(value);
  }
  return objects;
}

export async function renderPlatform(repoRoot: string, dir = 'platform'): Promise<KubeObject[]> {
  const kubectl = findTool('kubectl');
  try {
    const { stdout } = await run(kubectl, ['kustomize', path.join(repoRoot, dir)], { maxBuffer: 64 * 1024 * 1024 });
    return parseRendered(stdout);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`kubectl kustomize ${dir} failed: ${(stderr || (err as Error).message).trim()}`);
  }
}
