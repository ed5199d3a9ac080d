// Proves what a function's container image would do, on a machine without a Docker engine: the image
// is built by platform/images (its Dockerfile replayed into a content-keyed cache), then the final
// stage's CMD is started in its WORKDIR, with its ENV, as its non-root USER, on the Node the base image
// would carry. Only what can be replayed faithfully is accepted (see platform/images/dockerfile.ts), so a
// green test means the image was proved.
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildImageFiles, linkTree, refuseStrayNodeModules } from '../images/build.js';
import type { Stage } from '../images/dockerfile.js';
import { freePort } from '../tools/ports.js';
import { startProcess, type ManagedProcess } from '../tools/process.js';

export { parseDockerfile, readDockerfile, type Stage, type Step } from '../images/dockerfile.js';

export interface ImageOptions {
  /** Path of the Dockerfile. */
  dockerfile: string;
  /** Build context (the folder `docker build` would be given). */
  context: string;
  /** Extra environment, as `docker run -e` or a Knative Service's env would add (PORT is set for you). */
  env?: Record<string, string>;
  /** Path polled until it answers 2xx. */
  readyPath?: string;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Folder of built images; default platform/images' (the per-user cache). */
  cacheDir?: string;
}

export interface RunningImage {
  url: string;
  port: number;
  stages: Stage[];
  final: Stage;
  /** Host folder standing for the final stage's WORKDIR. */
  workdir: string;
  uid: number;
  gid: number;
  /** Lockfile packages marked dev that were checked to be absent from the final stage. */
  devPackagesChecked: number;
  process: ManagedProcess;
  /** Stops the process and deletes the folders. */
  stop(): Promise<void>;
}

/** Builds the image (or finds it built) and starts the final stage's CMD; see the top of this file. */
export async function runImage(options: ImageOptions): Promise<RunningImage> {
  const image = await buildImageFiles({
    dockerfile: options.dockerfile,
    context: options.context,
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
  });
  const { final, uid, gid } = image;
  const cmd = final.cmd!;
  const root = await mkdtemp(path.join(tmpdir(), 'promsnap-image-'));
  try {
    // mkdtemp makes a private folder; the image's user must be able to read its files. The cache may sit
    // where that user cannot reach (root's home): the same files, linked here.
    await chmod(root, 0o755);
    refuseStrayNodeModules(root);
    const rootfs = path.join(root, 'rootfs');
    await linkTree(image.rootfs, rootfs);
    const bin = path.join(root, 'base', 'bin');
    await mkdir(bin, { recursive: true });
    await linkOrCopy(image.node, path.join(bin, 'node'));
    const finalWorkdir = path.join(rootfs, final.workdir);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const command = cmd[0]!.includes('/') ? path.join(rootfs, path.posix.resolve(final.workdir, cmd[0]!)) : path.join(bin, cmd[0]!);
    if (!existsSync(command)) throw new Error(`CMD ${JSON.stringify(cmd)}: ${cmd[0]} is not in the image (only node is)`);
    const running = await startProcess({
      name: `image ${path.relative(options.context, options.dockerfile)}`,
      command,
      args: cmd.slice(1),
      cwd: finalWorkdir,
      // A container starts with the image's environment only, not this shell's.
      env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOME: '/', ...final.env, PORT: String(port), ...options.env },
      uid,
      gid,
      ...(options.readyPath ? { readyUrl: url + options.readyPath } : {}),
      ...(options.onLine ? { onLine: options.onLine } : {}),
    });
    return {
      url,
      port,
      stages: image.stages,
      final,
      workdir: finalWorkdir,
      uid,
      gid,
      devPackagesChecked: image.devPackagesChecked,
      process: running,
      async stop() {
        await running.stop('SIGTERM', 5_000);
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The packages the compiled code reachable from `entry` loads at run time, by package name: static
 * imports and re-exports, dynamic import(), and require() (also through createRequire), following the
 * relative imports from file to file. Built-in modules are left out. What an image must install is
 * exactly this list.
 */
export async function packagesLoadedBy(entry: string): Promise<string[]> {
  const specifiers = [
    /(?:^|[\s;}])(?:import|export)\s[^;'"]*?\sfrom\s*(['"])([^'"]+)\1/g,
    /(?:^|[\s;}])import\s*(['"])([^'"]+)\1/g,
    /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g,
    /\brequire\s*\(\s*(['"])([^'"]+)\1\s*\)/g,
    /\bcreateRequire\([^)]*\)\s*\(\s*(['"])([^'"]+)\1\s*\)/g,
  ];
  const packages = new Set<string>();
  const seen = new Set<string>();
  const pending = [path.resolve(entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const code = await readFile(file, 'utf8');
    for (const pattern of specifiers) {
      for (const match of code.matchAll(pattern)) {
        const specifier = match[2]!;
        if (specifier.startsWith('.')) pending.push(path.resolve(path.dirname(file), specifier));
        else if (!specifier.startsWith('node:'))
          packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
  }
  return [...packages].sort();
}

async function linkOrCopy(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch {
    await copyFile(source, target);
    await chmod(target, 0o755);
  }
}
