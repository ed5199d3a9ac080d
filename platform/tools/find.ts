// Finding the programs we run, and saying how to install one that is missing. Tools on PATH (run.sh
// puts the pinned ones first) are found by name; the pinned builds that stay off PATH (etcd,
// kube-apiserver, Knative's processes, whose names are generic) are found by version in the cache.
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { toolDir, toolVersion, type ToolName } from './versions.js';

export class MissingToolError extends Error {
  constructor(
    readonly tool: string,
    readonly installCommand: string,
  ) {
    super(`${tool} is not installed (not found on PATH). Install it with:\n  ${installCommand}`);
    this.name = 'MissingToolError';
  }
}

/** How each external tool is installed (run from the repository root): provision.sh, as npm's scripts do. */
export const installCommands: Record<string, string> = {
  prometheus: 'bash platform/tools/provision.sh prometheus',
  promtool: 'bash platform/tools/provision.sh prometheus',
  minio: 'bash platform/tools/provision.sh minio',
  mc: 'bash platform/tools/provision.sh mc',
  hey: 'bash platform/tools/provision.sh hey',
  etcd: 'bash platform/tools/provision.sh etcd',
  'kube-apiserver': 'bash platform/tools/provision.sh kube-apiserver',
  kubectl: 'bash platform/tools/provision.sh kubectl',
  skaffold: 'bash platform/tools/provision.sh skaffold',
  curl: 'apt-get install -y curl',
  taskset: 'apt-get install -y util-linux',
  unshare: 'apt-get install -y util-linux',
  nsenter: 'apt-get install -y util-linux',
  setpriv: 'apt-get install -y util-linux',
  mount: 'apt-get install -y mount',
  env: 'apt-get install -y coreutils',
  bash: 'apt-get install -y bash',
  ip: 'apt-get install -y iproute2',
  openssl: 'apt-get install -y openssl',
  umount: 'apt-get install -y mount',
  sleep: 'apt-get install -y coreutils',
  hostname: 'apt-get install -y hostname',
  getconf: 'apt-get install -y libc-bin',
  ps: 'apt-get install -y procps',
};

/** Absolute path of an executable on PATH, or a MissingToolError that says how to install it. */
export function findTool(tool: string, searchPath = process.env['PATH'] ?? ''): string {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  throw new MissingToolError(tool, installCommands[tool] ?? `install ${tool} and put it on PATH`);
}

/** A system program (ip, unshare, taskset) found on PATH or in the folders root's PATH would have. */
export function findSystemTool(tool: string): string {
  return findTool(tool, [process.env['PATH'] ?? '', '/usr/sbin', '/sbin', '/usr/bin', '/bin'].join(path.delimiter));
}

/** A pinned binary in the per-user cache (`<cache>/<tool>-<version>/bin/<binary>`), or how to install it. */
export function cachedBinary(tool: ToolName, binary: string = tool, env: NodeJS.ProcessEnv = process.env): string {
  const file = path.join(toolDir(tool, env), 'bin', binary);
  if (!existsSync(file)) throw new MissingToolError(`${tool} ${toolVersion[tool]} (${file})`, `bash platform/tools/provision.sh ${tool}`);
  return file;
}
