// kubectl, the one way our code runs it: against a given kubeconfig (with a discovery cache of its
// own, so a user's ~/.kube stays untouched) or, for rendering, against none.
import { CommandError, runCommand, type CommandOptions, type CommandResult } from './command.js';
import { findTool } from './find.js';

export type KubectlResult = CommandResult;
export type KubectlOptions = Pick<CommandOptions, 'input' | 'cwd' | 'allowFailure' | 'timeoutMs'>;

export class KubectlError extends CommandError {
  constructor(args: readonly string[], result: KubectlResult) {
    super('kubectl', args, result);
    this.name = 'KubectlError';
  }
}

export interface Kubectl {
  /** Runs kubectl; throws KubectlError on a non-zero exit. */
  (...args: string[]): Promise<KubectlResult>;
  /** kubectl with stdin, a working directory, or a non-zero exit returned rather than thrown (a plain function: pass it on as it is). */
  with: (options: KubectlOptions, ...args: string[]) => Promise<KubectlResult>;
}

export interface KubectlTarget {
  /** kubectl's binary; default the one on PATH. */
  binary?: string;
  /** Environment for kubectl (KUBECONFIG, KUBECACHEDIR); default this process's. */
  env?: NodeJS.ProcessEnv;
}

export function kubectlFor(target: KubectlTarget = {}): Kubectl {
  const binary = target.binary ?? findTool('kubectl');
  const env = target.env ?? process.env;
  const withOptions = async (options: KubectlOptions, ...args: string[]): Promise<KubectlResult> => {
    const result = await runCommand(binary, args, { ...options, env, allowFailure: true });
    if (result.code !== 0 && !options.allowFailure) throw new KubectlError(args, result);
    return result;
  };
  const kubectl = (...args: string[]) => withOptions({}, ...args);
  return Object.assign(kubectl, { with: withOptions });
}

/** `kubectl kustomize DIR`: the objects as `kubectl apply -k DIR` would send them, as YAML. */
export async function kustomize(dir: string, binary?: string): Promise<string> {
  const result = await kubectlFor(binary ? { binary } : {}).with({ allowFailure: true }, 'kustomize', dir);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}
