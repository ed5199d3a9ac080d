// Rendering the platform: `kubectl kustomize platform` (after ensureCredentials, so a fresh clone
// renders), parsed into objects. Everything else in this folder reads those objects, purely.
import { parseAllDocuments, stringify } from 'yaml';
import { ensureCredentials, platformDir } from '../credentials.js';
import { kustomize } from '../tools/kubectl.js';
import type { KubeObject } from './objects.js';

export { platformDir };

export interface RenderedPlatform {
  /** kubectl's output, as it would be applied. */
  yaml: string;
  objects: KubeObject[];
}

export interface RenderOptions {
  /** The kustomization to render (default: this platform/ folder). */
  dir?: string;
  /** kubectl binary (default: `kubectl` on PATH). */
  kubectl?: string;
  /** Called with each line ensureCredentials reports (a *.env created). */
  log?: (line: string) => void;
}

/** Renders the platform as `kubectl apply -k` would see it, creating missing credentials first. */
export async function renderPlatform(options: RenderOptions = {}): Promise<RenderedPlatform> {
  const dir = options.dir ?? platformDir;
  await ensureCredentials({ dir, ...(options.log ? { log: options.log } : {}) });
  const stdout = await kustomize(dir, options.kubectl);
  return { yaml: stdout, objects: parseObjects(stdout, `kubectl kustomize ${dir}`) };
}

/** Parses a multi-document YAML stream of Kubernetes objects; any YAML error or non-object fails. */
export function parseObjects(text: string, source = 'manifests'): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const object = value as Partial<KubeObject>;
    if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string' || typeof object.metadata?.name !== 'string') {
      throw new Error(`${source}: not a Kubernetes object: ${JSON.stringify(value).slice(0, 200)}`);
    }
    objects.push(object as KubeObject);
  }
  return objects;
}

/**
 * Objects as a YAML stream for `kubectl apply -f -`. kubectl reads YAML 1.1, where a bare on, off, yes, no
 * or y is a boolean; the yaml package writes 1.2 and leaves such strings bare (minio-setup's `--path on`
 * reached the API server as `true` and its Job was refused). Written as 1.1, they are quoted.
 */
export function objectsYaml(objects: readonly object[]): string {
  return objects.map((object) => stringify(object, { version: '1.1', lineWidth: 0 })).join('---\n');
}
