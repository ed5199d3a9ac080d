// CRDs for a control plane: the pinned Knative release's folders, and an install that returns only once
// every CRD is Established and its resources are served by discovery (only then does kubectl know the
// new kinds).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { MissingToolError } from '../tools/find.js';
import type { KubectlOptions, KubectlResult } from '../tools/kubectl.js';
import { toolDir, versions } from '../tools/versions.js';
import { waitFor } from '../tools/wait.js';

/** The pinned Knative release's CRD folders, as provision.sh knative-crds links them into the cache. */
export function knativeCrdDirectoryPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [
    path.join(toolDir('knative-serving-src', env), 'src', 'config', 'core', '300-resources'),
    path.join(toolDir('knative-eventing-src', env), 'src', 'config', 'core', 'resources'),
  ];
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      throw new MissingToolError(
        `Knative Serving ${versions.knativeServing} / Eventing ${versions.knativeEventing} CRDs (${dir})`,
        'bash platform/tools/provision.sh knative-crds',
      );
    }
  }
  return dirs;
}

interface CrdList {
  items: Array<{
    metadata: { name: string };
    spec: { group: string; names: { plural: string }; versions: Array<{ name: string; served: boolean }> };
    status?: { conditions?: Array<{ type: string; status: string }> };
  }>;
}

/**
 * Applies every CRD in the folders with one server-side apply, then waits until each is Established
 * and its resources appear in discovery. Returns the CRDs' names.
 */
export async function installCrds(
  dirs: string[],
  kubectlWith: (options: KubectlOptions, ...args: string[]) => Promise<KubectlResult>,
  getJson: <T>(apiPath: string) => Promise<T>,
  timeoutMs: number,
): Promise<string[]> {
  const applied = await kubectlWith({}, 'apply', '--server-side', '--field-manager=promsnap-test', ...dirs.flatMap((dir) => ['-f', dir]), '-o', 'name');
  const names = applied.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('customresourcedefinition.apiextensions.k8s.io/'))
    .map((line) => line.slice('customresourcedefinition.apiextensions.k8s.io/'.length));
  if (names.length === 0) throw new Error(`no CustomResourceDefinition found in ${dirs.join(', ')}`);

  const pending = new Set(names);
  await waitFor(
    async () => {
      const list = await getJson<CrdList>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
      for (const crd of list.items) {
        if (!pending.has(crd.metadata.name)) continue;
        const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
        if (!established) continue;
        const served = await Promise.all(
          crd.spec.versions
            .filter((v) => v.served)
            .map(async (v) => {
              const resources = await getJson<{ resources: Array<{ name: string }> }>(`/apis/${crd.spec.group}/${v.name}`).catch(() => ({ resources: [] }));
              return resources.resources.some((r) => r.name === crd.spec.names.plural);
            }),
        );
        if (served.every(Boolean)) pending.delete(crd.metadata.name);
      }
      return pending.size === 0;
    },
    { what: `CRDs established and served: ${[...pending].join(', ')}`, timeoutMs, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nstill pending: ${[...pending].join(', ')}`);
  });
  return names;
}
