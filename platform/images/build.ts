// Builds what a function's container image holds, on a machine without a Docker engine: reads the
// Dockerfile, replays each stage into a folder laid out as that stage's filesystem (COPY from the build
// context or an earlier stage, the RUN steps it knows), and keeps the final stage's files, checked (no
// dev dependency, readable by the image's user, on the Node the base image carries), in a cache keyed by
// content: the Dockerfile, every file its COPY steps take from the context, this Node's version and the
// replay's own version. A second build of unchanged sources finds the entry and is instant.
//
// The result is an ImageLayout the local node binds into a pod's root (the final stage's top folders at
// their paths, this Node at /usr/local/bin/node), or a folder runImage (testing/image.ts) starts from.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, link, lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../tools/command.js';
import { cacheDir } from '../tools/versions.js';
import { readDockerfile, type Stage } from './dockerfile.js';
import type { ImageLayout } from './layout.js';
import { writeToStore } from './store.js';

/** Bumped when the replay changes what it produces, so older cache entries are not reused. */
const replayVersion = 1;

/** Where built images are kept between runs: the per-user tool cache (outside any clone). */
export function defaultImageCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), 'images');
}

export interface BuildOptions {
  /** Path of the Dockerfile. */
  dockerfile: string;
  /** Build context (the folder `docker build` would be given). */
  context: string;
  /** Folder of built images; default defaultImageCacheDir(). */
  cacheDir?: string;
}

/** One built image in the cache. */
export interface BuiltImage {
  /** The content key (hex sha256) naming the cache entry. */
  key: string;
  /** The cache entry's folder. */
  dir: string;
  /** The final stage's filesystem: container path P is rootfs + P. */
  rootfs: string;
  stages: Stage[];
  final: Stage;
  uid: number;
  gid: number;
  /** Lockfile packages marked dev that were checked to be absent from the final stage. */
  devPackagesChecked: number;
  /** The Node binary standing for the base image's /usr/local/bin/node. */
  node: string;
  /** False when this call found the entry already built. */
  built: boolean;
}

interface EntryMeta {
  key: string;
  dockerfile: string;
  uid: number;
  gid: number;
  devPackagesChecked: number;
  node: string;
  builtAt: string;
}

// Builds of one key under way in this process: a second caller waits for the first.
const building = new Map<string, Promise<Omit<BuiltImage, 'stages' | 'final'>>>();

/** Replays the Dockerfile into the cache, or finds it there already; see the top of this file. */
export async function buildImageFiles(options: BuildOptions): Promise<BuiltImage> {
  const dockerfile = path.resolve(options.dockerfile);
  const context = path.resolve(options.context);
  const cache = path.resolve(options.cacheDir ?? defaultImageCacheDir());
  const text = await readFile(dockerfile, 'utf8');
  const { stages, final } = await readDockerfile(dockerfile);
  const cmd = final.cmd;
  if (!cmd || cmd.length === 0) throw new Error('the final stage has no CMD');
  const { uid, gid } = nonRootUser(final.user);
  // The base image's node, here the pinned one this replay runs on, which must be the tag's version.
  checkBaseNode(final.image);

  const key = await contentKey(text, stages, context, dockerfile);
  const entry = path.join(cache, key);
  const found = await readEntry(entry);
  if (found) return { ...found, stages, final, built: false };

  let pending = building.get(entry);
  if (!pending) {
    pending = replayInto(cache, entry, { dockerfile, context, stages, final, key, uid, gid }).finally(() => building.delete(entry));
    building.set(entry, pending);
  }
  return { ...(await pending), stages, final };
}

/** The layout the local node runs for reference, built from the Dockerfile (see buildImageFiles). */
export async function buildImage(options: BuildOptions & { reference: string; store?: string }): Promise<ImageLayout> {
  const layout = await imageLayout(await buildImageFiles(options), options.reference);
  if (options.store) await writeToStore(options.store, layout);
  return layout;
}

/**
 * A built image as the node binds it: each top folder of the final stage at its path (one level deeper
 * for the base image's own folders, such as /etc or /usr, which the node's root provides), this Node at
 * /usr/local/bin/node, the final stage's CMD, WORKDIR, ENV and USER. The base image's ENTRYPOINT
 * (docker-entrypoint.sh, which runs the command it is given) is not replayed: the command runs as given.
 */
export async function imageLayout(image: BuiltImage, reference: string): Promise<ImageLayout> {
  const binds: ImageLayout['binds'] = [];
  const baseFolders = new Set(['bin', 'dev', 'etc', 'lib', 'lib64', 'opt', 'proc', 'run', 'sbin', 'sys', 'tmp', 'usr', 'var']);
  const walk = async (dir: string, target: string) => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const source = path.join(dir, entry.name);
      const containerPath = path.posix.join(target, entry.name);
      if (target === '/' && entry.isDirectory() && baseFolders.has(entry.name)) await walk(source, containerPath);
      else binds.push({ source, target: containerPath });
    }
  };
  await walk(image.rootfs, '/');
  binds.push({ source: image.node, target: '/usr/local/bin/node' });
  return {
    reference,
    binds,
    entrypoint: [],
    cmd: image.final.cmd ?? [],
    workdir: image.final.workdir,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', NODE_VERSION: process.versions.node, ...image.final.env },
    user: { uid: image.uid, gid: image.gid },
  };
}

// ---------------------------------------------------------------------------------------------------

async function readEntry(entry: string): Promise<Omit<BuiltImage, 'stages' | 'final' | 'built'> | undefined> {
  try {
    const meta = JSON.parse(await readFile(path.join(entry, 'meta.json'), 'utf8')) as EntryMeta;
    if (!existsSync(meta.node)) return undefined;
    return {
      key: meta.key,
      dir: entry,
      rootfs: path.join(entry, 'rootfs'),
      uid: meta.uid,
      gid: meta.gid,
      devPackagesChecked: meta.devPackagesChecked,
      node: meta.node,
    };
  } catch {
    return undefined;
  }
}

/** Hex sha256 over what decides the result: replay version, Node, the Dockerfile, and each context file COPY takes. */
async function contentKey(text: string, stages: Stage[], context: string, dockerfile: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`promsnap image replay ${replayVersion}\nnode ${process.versions.node}\n${text}\n`);
  const sources = new Set<string>();
  for (const stage of stages) {
    for (const step of stage.steps) {
      if (step.kind !== 'copy' || step.from !== undefined) continue;
      for (const src of step.sources) sources.add(contextPath(context, src, `${path.basename(dockerfile)} line ${step.line}`));
    }
  }
  for (const source of [...sources].sort()) await hashTree(hash, context, source);
  return hash.digest('hex');
}

async function hashTree(hash: Hash, context: string, file: string): Promise<void> {
  const info = await lstat(file).catch(() => undefined);
  const name = path.relative(context, file);
  if (!info) {
    hash.update(`missing ${name}\n`);
    return;
  }
  if (info.isSymbolicLink()) {
    hash.update(`link ${name} ${await readlink(file)}\n`);
  } else if (info.isDirectory()) {
    hash.update(`dir ${name}\n`);
    for (const child of (await readdir(file)).sort()) await hashTree(hash, context, path.join(file, child));
  } else {
    hash.update(
      `file ${name} ${info.mode & 0o111 ? 'x' : '-'} ${createHash('sha256')
        .update(await readFile(file))
        .digest('hex')}\n`,
    );
  }
}

interface Replay {
  dockerfile: string;
  context: string;
  stages: Stage[];
  final: Stage;
  key: string;
  uid: number;
  gid: number;
}

/** Replays every stage in a fresh folder, checks the final one, and moves it into place as the entry. */
async function replayInto(cache: string, entry: string, replay: Replay): Promise<Omit<BuiltImage, 'stages' | 'final'>> {
  await mkdir(cache, { recursive: true });
  refuseStrayNodeModules(cache);
  const work = path.join(cache, `.build-${randomBytes(6).toString('hex')}`);
  await mkdir(work);
  try {
    // The image's user must be able to read its files.
    await chmod(work, 0o755);
    const fsOf = (stage: Stage) => path.join(work, `stage-${stage.index}`);
    const host = (stage: Stage, containerPath: string) => path.join(fsOf(stage), containerPath);
    for (const stage of replay.stages) {
      await mkdir(host(stage, stage.workdir), { recursive: true });
      for (const step of stage.steps) {
        const where = `${path.basename(replay.dockerfile)} line ${step.line}`;
        const workdir = host(stage, step.workdir);
        await mkdir(workdir, { recursive: true });
        if (step.kind === 'copy') {
          const source = step.from === undefined ? undefined : stageByRef(replay.stages, step.from, stage, where);
          const sources = step.sources.map((src) => (source ? host(source, path.posix.resolve('/', src)) : contextPath(replay.context, src, where)));
          await copyInto(sources, path.join(workdir, step.dest), step.dest.endsWith('/') || sources.length > 1, where);
        } else {
          for (const command of step.command.split('&&').map((c) => c.trim())) {
            await replayRun(command, { workdir, context: replay.context, where });
          }
        }
      }
    }
    const rootfs = path.join(work, 'rootfs');
    await rename(fsOf(replay.final), rootfs);
    const devPackagesChecked = await checkNoDevDependencies(path.join(rootfs, replay.final.workdir));
    await makeReadable(rootfs);
    for (const stage of replay.stages) if (stage !== replay.final) await rm(fsOf(stage), { recursive: true, force: true });
    const node = await realpath(process.execPath);
    const meta: EntryMeta = {
      key: replay.key,
      dockerfile: replay.dockerfile,
      uid: replay.uid,
      gid: replay.gid,
      devPackagesChecked,
      node,
      builtAt: new Date().toISOString(),
    };
    await writeFile(path.join(work, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    try {
      await rename(work, entry);
    } catch (err) {
      // Another process built the same key first: its entry is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(work, { recursive: true, force: true });
    }
    await pruneOlderBuilds(cache, replay.dockerfile, entry);
    return { key: replay.key, dir: entry, rootfs: path.join(entry, 'rootfs'), uid: replay.uid, gid: replay.gid, devPackagesChecked, node, built: true };
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Keeps the cache from growing with every source change: builds of the same Dockerfile beyond the newest
 * three are removed once a day old (a pod of the local cluster may still have a recent one bound).
 */
async function pruneOlderBuilds(cache: string, dockerfile: string, keep: string): Promise<void> {
  const entries: Array<{ dir: string; builtAt: number }> = [];
  for (const name of await readdir(cache)) {
    if (name.startsWith('.')) continue;
    const dir = path.join(cache, name);
    try {
      const meta = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as EntryMeta;
      if (meta.dockerfile === dockerfile && dir !== keep) entries.push({ dir, builtAt: Date.parse(meta.builtAt) });
    } catch {
      // not an entry, or one being written
    }
  }
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const old of entries.sort((a, b) => b.builtAt - a.builtAt).slice(2)) {
    if (old.builtAt < dayAgo) await rm(old.dir, { recursive: true, force: true });
  }
}

/** USER as uid[:gid]; numeric because Kubernetes' runAsNonRoot can only verify a numeric user. */
function nonRootUser(user: string | undefined): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  if (!match) {
    throw new Error(
      `the final stage's USER is ${user === undefined ? 'missing' : JSON.stringify(user)}: give a numeric uid[:gid] such as 1000:1000, so runAsNonRoot can check it`,
    );
  }
  const uid = Number(match[1]);
  if (uid === 0) throw new Error('the final stage runs as root (USER 0)');
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

function stageByRef(stages: Stage[], ref: string, current: Stage, where: string): Stage {
  const found = stages.find((s) => s.name === ref || String(s.index) === ref);
  if (!found || found.index >= current.index) throw new Error(`${where}: COPY --from=${ref} names no earlier stage`);
  return found;
}

function contextPath(context: string, src: string, where: string): string {
  if (/[*?[]/.test(src)) throw new Error(`${where}: wildcards in COPY sources are not replayed (${src})`);
  const resolved = path.resolve(context, src.replace(/^\/+/, ''));
  if (resolved === path.resolve(context) || !resolved.startsWith(path.resolve(context) + path.sep)) {
    throw new Error(`${where}: COPY of the whole context or outside it (${src}) is not replayed: name what the image needs`);
  }
  return resolved;
}

/** COPY's rules: a folder's contents go into dest; a file goes to dest, or into it when dest is a folder. */
async function copyInto(sources: string[], dest: string, destIsFolder: boolean, where: string): Promise<void> {
  for (const source of sources) {
    const info = await stat(source).catch(() => undefined);
    if (!info) throw new Error(`${where}: COPY source ${source} does not exist`);
    if (info.isDirectory()) {
      await mkdir(dest, { recursive: true });
      await cp(source, dest, { recursive: true });
    } else {
      const target = destIsFolder ? path.join(dest, path.basename(source)) : dest;
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(source, target);
    }
  }
}

async function replayRun(command: string, at: { workdir: string; context: string; where: string }): Promise<void> {
  const words = command.split(/\s+/);
  if (words[0] === 'npm' && words[1] === 'ci') {
    const flags = npmCiFlags(words.slice(2), at.where);
    if (flags.omitDev) {
      // The real install, from the stage's own package.json files and lockfile.
      const workspaces = flags.workspaces.flatMap((w) => ['--workspace', w]);
      await exec('npm', ['ci', '--omit=dev', ...workspaces, '--prefer-offline', '--no-audit', '--no-fund'], at.workdir, at.where);
      return;
    }
    // A full install for building: the context's node_modules comes from the same lockfile.
    const [stageLock, contextLock] = await Promise.all([
      readFile(path.join(at.workdir, 'package-lock.json'), 'utf8').catch(() => undefined),
      readFile(path.join(at.context, 'package-lock.json'), 'utf8'),
    ]);
    if (stageLock !== contextLock) throw new Error(`${at.where}: npm ci runs before the context's package-lock.json is copied in`);
    await symlink(path.join(at.context, 'node_modules'), path.join(at.workdir, 'node_modules'), 'dir');
    return;
  }
  if (words[0] === 'npx' && words[1] === 'tsc') {
    await exec('npx', words.slice(1), at.workdir, at.where);
    return;
  }
  // Shrinks the image only; replayed here it would empty this machine's npm cache.
  if (command === 'npm cache clean --force') return;
  throw new Error(`${at.where}: RUN ${command} is not replayed by platform/images`);
}

/** The `npm ci` flags an image may use: production-only, per workspace, and npm's quiet flags. */
function npmCiFlags(flags: string[], where: string): { omitDev: boolean; workspaces: string[] } {
  const parsed = { omitDev: false, workspaces: [] as string[] };
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    if (flag === '--omit=dev') parsed.omitDev = true;
    else if (flag === '--workspace' || flag === '-w') parsed.workspaces.push(flags[++i] ?? '');
    else if (flag.startsWith('--workspace=')) parsed.workspaces.push(flag.slice('--workspace='.length));
    else if (flag !== '--no-audit' && flag !== '--no-fund') throw new Error(`${where}: npm ci ${flag} is not replayed by platform/images`);
  }
  if (parsed.workspaces.some((w) => w === '')) throw new Error(`${where}: npm ci --workspace needs a folder`);
  return parsed;
}

async function exec(command: string, argv: string[], cwd: string, where: string): Promise<void> {
  const result = await runCommand(command, argv, { cwd, allowFailure: true });
  if (result.code !== 0) throw new Error(`${where}: ${command} ${argv.join(' ')} exited ${result.code}:\n${(result.stdout + result.stderr).slice(-4_000)}`);
}

/** Node looks for node_modules in every parent folder; one above the image would lend it packages. */
export function refuseStrayNodeModules(root: string): void {
  for (let dir = root; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'node_modules'))) {
      throw new Error(`${path.join(dir, 'node_modules')} exists above ${root}: a replayed image could load packages it does not hold`);
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** Every package the lockfile marks dev-only must be absent; returns how many were checked. */
async function checkNoDevDependencies(workdir: string): Promise<number> {
  const lockFile = path.join(workdir, 'package-lock.json');
  if (!existsSync(lockFile)) return 0;
  const lock = JSON.parse(await readFile(lockFile, 'utf8')) as { packages?: Record<string, { dev?: boolean }> };
  const dev = Object.entries(lock.packages ?? {}).filter(([key, entry]) => key.startsWith('node_modules/') && entry.dev === true);
  const present = dev.map(([key]) => key).filter((key) => existsSync(path.join(workdir, key)));
  if (present.length > 0) throw new Error(`dev dependencies in the final image: ${present.join(', ')}`);
  return dev.length;
}

async function makeReadable(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isSymbolicLink()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const mode = (await stat(full)).mode & 0o777;
    const wanted = entry.isDirectory() || mode & 0o111 ? mode | 0o555 : mode | 0o444;
    if (wanted !== mode) await chmod(full, wanted);
  }
  await chmod(dir, 0o755);
}

function checkBaseNode(image: string): void {
  const match = /^(?:docker\.io\/(?:library\/)?)?node:(\d+\.\d+\.\d+)\b/.exec(image);
  if (!match) throw new Error(`the final stage's base image ${image} is not an official node:X.Y.Z image`);
  if (match[1] !== process.versions.node) {
    throw new Error(`the base image ${image} carries Node ${match[1]}, but this replay runs Node ${process.versions.node}`);
  }
}

/**
 * A copy of a tree made of hard links where the file system allows (instant, no space), copies where not:
 * the same files reachable under another path (one a non-root user can traverse).
 */
export async function linkTree(source: string, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  await chmod(target, (await stat(source)).mode & 0o7777);
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = path.join(target, entry.name);
    if (entry.isSymbolicLink()) await symlink(await readlink(from), to);
    else if (entry.isDirectory()) await linkTree(from, to);
    else await link(from, to).catch(() => copyFile(from, to));
  }
}
