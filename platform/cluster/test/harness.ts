// What the CLI's tests on the real API server share: the CLI run as the real process a user starts,
// and the writes the missing controllers would make (statuses through the status subresource).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { waitFor } from '../../tools/wait.js';
import { startProcess, type ManagedProcess } from '../../tools/process.js';
import type { TestApiServer } from '../../testing/apiserver.js';
import { resourceTypes, type Resource } from '../pipeline.js';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const main = path.join(repoRoot, 'platform', 'cluster', 'main.ts');

export interface CliResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  process: ManagedProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout holds a line matching the pattern. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  result(): Promise<CliResult>;
}

/** Starts `node --import tsx platform/cluster/main.ts ARGS` as `npm run cluster -- ARGS` does. */
export async function startCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunningCli> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const child = await startProcess({
    name: `cluster ${args.join(' ')}`,
    command: process.execPath,
    args: ['--import', 'tsx', main, ...args],
    cwd: repoRoot,
    env,
    onLine: (line, stream) => (stream === 'stdout' ? stdout : stderr).push(line),
  });
  const text = (lines: string[]) => (lines.length > 0 ? lines.join('\n') + '\n' : '');
  return {
    process: child,
    stdout: () => text(stdout),
    stderr: () => text(stderr),
    waitForLine: (pattern, timeoutMs = 20_000) =>
      waitFor(() => stdout.find((line) => pattern.test(line)), {
        what: `a line matching ${pattern} from cluster ${args.join(' ')}; got:\n${text(stdout)}${text(stderr)}`,
        timeoutMs,
        intervalMs: 20,
      }),
    result: async () => {
      const code = await child.exited;
      // The last chunk of output can arrive just after 'exit'; the streams end right after.
      await new Promise((resolve) => setImmediate(resolve));
      return { code, stdout: text(stdout), stderr: text(stderr) };
    },
  };
}

export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return (await startCli(args, env)).result();
}

/** kubectl's name for each resource, fully qualified so no other API group's `services` is meant. */
export function kubectlType(resource: Resource): string {
  const type = resourceTypes[resource];
  return type.group === 'apps' ? 'deployments.apps' : `${type.plural}.${type.group}`;
}

const clients = new WeakMap<TestApiServer, { apps: AppsV1Api; custom: CustomObjectsApi }>();

function clientsFor(api: TestApiServer) {
  let found = clients.get(api);
  if (!found) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(api.kubeconfigPath);
    found = { apps: kubeConfig.makeApiClient(AppsV1Api), custom: kubeConfig.makeApiClient(CustomObjectsApi) };
    clients.set(api, found);
  }
  return found;
}

/** Writes an object's status as its controller would: a merge patch on the status subresource. */
export async function writeStatus(api: TestApiServer, resource: Resource, namespace: string, name: string, status: unknown): Promise<void> {
  // In process rather than `kubectl patch --subresource=status`: the same request, without a process start per write.
  const { apps, custom } = clientsFor(api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  if (resource === 'deployment') {
    await apps.patchNamespacedDeploymentStatus({ name, namespace, body: { status } }, mergePatch);
    return;
  }
  const { group, version, plural } = resourceTypes[resource];
  await custom.patchNamespacedCustomObjectStatus({ group, version, namespace, plural, name, body: { status } }, mergePatch);
}

/** A printed table read back by its header's column positions: one record per line, keyed by header. */
export function tableRows(text: string): Array<Record<string, string>> {
  const [header, ...lines] = text.split('\n\n')[0]!.trimEnd().split('\n');
  const starts = [...header!.matchAll(/\S+/g)].map((match) => ({ title: match[0], at: match.index }));
  return lines.map((line) => Object.fromEntries(starts.map(({ title, at }, i) => [title, line.slice(at, starts[i + 1]?.at ?? line.length).trim()])));
}

/** Whether any line looks like a JavaScript stack frame. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+[(:]\d+/m.test(text) || /\.ts:\d+:\d+/.test(text);
}
