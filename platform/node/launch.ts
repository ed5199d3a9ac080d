// What a container's process is: argv, working directory and environment, from its image and its spec as
// a container runtime combines them (command replaces ENTRYPOINT and drops CMD, args replace CMD, $(VAR)
// in both expanded from the container's environment: kubecontainer.ExpandContainerCommandAndArgs).
import type { V1Container } from '@kubernetes/client-node';
import { expandReferences } from '../manifests/pods.js';
import type { ImageLayout } from './images.js';

/** containerd's PATH for an image that sets none. */
export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Launch {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

export type LaunchDecision = { launch: Launch } | { error: string };

export function launchFor(container: V1Container, image: ImageLayout, containerEnv: Record<string, string>, hostname: string, uid: number): LaunchDecision {
  const expand = (words: readonly string[]) => words.map((word) => expandReferences(word, containerEnv));
  const command = container.command ?? [];
  const args = container.args ?? [];
  let argv: string[];
  if (command.length > 0) argv = [...expand(command), ...expand(args)];
  else if (args.length > 0) argv = [...image.entrypoint, ...expand(args)];
  else argv = [...image.entrypoint, ...image.cmd];
  if (argv.length === 0)
    return { error: `no command specified: image ${image.reference} has no ENTRYPOINT or CMD and container ${container.name} sets no command` };
  const env: Record<string, string> = { PATH: defaultPath, ...image.env, HOSTNAME: hostname, ...containerEnv };
  env['HOME'] ??= uid === 0 ? '/root' : '/';
  return { launch: { argv, cwd: container.workingDir || image.workdir || '/', env } };
}
