// Knative's releases as Knative ships them: the YAML of its Go modules' config/ folders, read the way
// `ko resolve -R -f config/...` reads them to make serving-core.yaml or eventing-core.yaml (every .yaml
// file, folders walked in lexical order), then changed only where the local cluster needs it. Pure
// apart from reading the files; install.ts applies the result.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { KubeObject } from '../manifests/objects.js';
import { describeObject } from '../manifests/objects.js';
import { parseObjects } from '../manifests/render.js';

export type KnativeComponent = 'serving' | 'eventing';

/** One Knative component's release, ready to apply: CRDs apart (they go first), the rest in apply order. */
export interface KnativeRelease {
  component: KnativeComponent;
  /** The module version the YAML comes from, e.g. 0.50.0. */
  version: string;
  /** The system namespace (knative-serving, knative-eventing). */
  namespace: string;
  /** CustomResourceDefinitions: installed and waited for before anything that watches them starts. */
  crds: KubeObject[];
  /** Everything else in apply order (by kind, then the files' order; webhook configurations last), with the local cluster's changes made. */
  objects: KubeObject[];
  /** What was left out of the module's YAML, and why. */
  skipped: Array<{ object: string; reason: string }>;
  /** What was changed, one line each, for the install's log. */
  changes: string[];
}

/** A file, or a folder read recursively in lexical order. */
export type ReleaseSource = string;

/** Every .yaml/.yml file of the sources, folders walked in lexical order (as ko resolve -R does). */
export async function releaseFiles(sources: readonly ReleaseSource[]): Promise<string[]> {
  const files: string[] = [];
  const walk = async (entry: string, named: boolean): Promise<void> => {
    if ((await stat(entry)).isDirectory()) {
      for (const name of (await readdir(entry)).sort()) await walk(path.join(entry, name), false);
    } else if (named || /\.ya?ml$/.test(entry)) {
      files.push(entry);
    }
  };
  for (const source of sources) await walk(source, true);
  return files;
}

/** The objects of the files, in order, each file's documents in its order. */
export async function readObjects(files: readonly string[]): Promise<KubeObject[]> {
  const objects: KubeObject[] = [];
  for (const file of files) objects.push(...parseObjects(await readFile(file, 'utf8'), file));
  return objects;
}

/** Typed objects (client-node's V1*) as release objects; each must name its apiVersion, kind and name. */
export function asKubeObjects(objects: ReadonlyArray<{ apiVersion?: string; kind?: string; metadata?: { name?: string } }>): KubeObject[] {
  return objects.map((object) => {
    if (!object.apiVersion || !object.kind || !object.metadata?.name) throw new Error(`not a complete object: ${JSON.stringify(object).slice(0, 200)}`);
    return object as KubeObject;
  });
}

/** A change to one object of the release: returns the changed copy, and says what it did. */
export interface Patch {
  kind: string;
  name: string;
  /** What the change is and why, for the log. */
  why: string;
  apply(object: KubeObject): KubeObject;
}

/** Sets keys of a ConfigMap's data (the documentation's `_example` key stays). */
export function configMapPatch(name: string, data: Record<string, string>, why: string): Patch {
  return {
    kind: 'ConfigMap',
    name,
    why: `${name}: ${Object.entries(data)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(', ')} (${why})`,
    apply: (object) => ({ ...object, data: { ...(object['data'] ?? {}), ...data } }),
  };
}

/** Kinds the local cluster leaves out, with the reason. */
const skippedKinds: Record<string, string> = {
  HorizontalPodAutoscaler: 'no metrics API on the local cluster: an HPA could never scale anything',
};

const webhookKinds = new Set(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);

/**
 * The order objects are applied in, by kind, as Helm installs a chart (its InstallOrder): identities,
 * rights and configuration before the workloads that need them at start (a Knative process that starts
 * before its ClusterRole exists exits, and a second crash costs the kubelet's 10 s back-off), other kinds
 * after the workloads, and webhook configurations last: they refuse writes until their webhook answers.
 */
const kindOrder = [
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'Role',
  'ClusterRoleBinding',
  'RoleBinding',
  'ConfigMap',
  'Secret',
  'PodDisruptionBudget',
  'Service',
  'EndpointSlice',
  'Deployment',
  'StatefulSet',
];

function applyRank(object: KubeObject): number {
  if (webhookKinds.has(object.kind)) return kindOrder.length + 1;
  const rank = kindOrder.indexOf(object.kind);
  return rank < 0 ? kindOrder.length : rank;
}

export interface ReleaseSpec {
  component: KnativeComponent;
  version: string;
  namespace: string;
  objects: readonly KubeObject[];
  patches?: readonly Patch[];
  /** Objects of ours the release needs here (the ingress's Service), applied after the release's own. */
  extra?: readonly KubeObject[];
}

/** Splits CRDs from the rest, leaves out what cannot run here, applies the patches (each must match once). */
export function assembleRelease(spec: ReleaseSpec): KnativeRelease {
  const skipped: KnativeRelease['skipped'] = [];
  const crds: KubeObject[] = [];
  const rest: KubeObject[] = [];
  const patches = spec.patches ?? [];
  const used = new Set<Patch>();
  for (const original of spec.objects) {
    const reason = skippedKinds[original.kind];
    if (reason) {
      skipped.push({ object: describeObject(original), reason });
      continue;
    }
    let object = original;
    for (const patch of patches) {
      if (patch.kind !== object.kind || patch.name !== object.metadata.name) continue;
      object = patch.apply(object);
      used.add(patch);
    }
    (object.kind === 'CustomResourceDefinition' ? crds : rest).push(object);
  }
  const unused = patches.filter((p) => !used.has(p));
  if (unused.length > 0) {
    throw new Error(`Knative ${spec.component} ${spec.version}: no ${unused.map((p) => `${p.kind} ${p.name}`).join(', ')} in its config/ to change`);
  }
  const ordered = [...rest, ...(spec.extra ?? [])]
    .map((object, index) => ({ object, index }))
    .sort((a, b) => applyRank(a.object) - applyRank(b.object) || a.index - b.index)
    .map((entry) => entry.object);
  return {
    component: spec.component,
    version: spec.version,
    namespace: spec.namespace,
    crds,
    objects: ordered,
    skipped,
    changes: [...patches.map((p) => p.why), ...(spec.extra ?? []).map((o) => `added ${describeObject(o)}`)],
  };
}
