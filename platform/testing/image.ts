// Proves what a function's container image would do, on a machine without a Docker engine: reads the
// Dockerfile, replays each stage into a folder laid out as that stage's filesystem (COPY from the
// build context or an earlier stage, the RUN steps it knows), then starts the final stage's CMD in its
// WORKDIR, with its ENV, as its non-root USER, on the Node the base image would carry.
//
// Only what can be replayed faithfully is accepted; anything else (ADD, ARG, shell-form CMD, an
// unknown RUN) fails loudly instead of being skipped, so a green test means the image was proved.
import { chmod, copyFile, cp, link, mkdir, mkdtemp, readFile, readdir, realpath, rm, stat, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DockerfileParser, type Copy, type Env, type From, type Instruction } from 'dockerfile-ast';
import { runCommand } from '../tools/command.js';
import { freePort } from '../tools/ports.js';
import { startProcess, type ManagedProcess } from '../tools/process.js';

export type Step =
  | { kind: 'copy'; from: string | undefined; sources: string[]; dest: string; line: number }
  | { kind: 'run'; command: string; line: number };

export interface Stage {
  index: number;
  name: string | undefined;
  /** The FROM image, e.g. node:24.21.0-bookworm-slim. */
  image: string;
  /** WORKDIR as it stands at the end of the stage (absolute, container path). */
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  cmd: string[] | undefined;
  expose: string[];
  /** COPY and RUN steps in order, each with its WORKDIR resolved. */
  steps: Array<Step & { workdir: string }>;
}

/** Parses a Dockerfile into its stages; throws on any instruction this module cannot replay. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    if (keyword === 'FROM') {
      const from = instruction as From;
      const image = from.getImage();
      if (!image) throw new Error(`line ${line}: FROM without an image`);
      stages.push({
        index: stages.length,
        name: from.getBuildStage() ?? undefined,
        image,
        workdir: '/',
        env: {},
        user: undefined,
        cmd: undefined,
        expose: [],
        steps: [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`line ${line}: ${keyword} before the first FROM`);
    switch (keyword) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, args(instruction).join(' '));
        break;
      case 'ENV':
        for (const property of (instruction as Env).getProperties()) stage.env[property.getName()] = property.getValue() ?? '';
        break;
      case 'USER':
        stage.user = args(instruction).join(' ');
        break;
      case 'EXPOSE':
        stage.expose.push(...args(instruction));
        break;
      case 'CMD':
        stage.cmd = jsonForm(instruction, line);
        break;
      case 'COPY': {
        const copy = instruction as Copy;
        for (const flag of copy.getFlags()) {
          if (flag.getName() !== 'from') throw new Error(`line ${line}: COPY --${flag.getName()} is not replayed`);
        }
        const parts = (args(instruction)[0] ?? '').startsWith('[') ? jsonForm(instruction, line) : args(instruction);
        if (parts.length < 2) throw new Error(`line ${line}: COPY needs a source and a destination`);
        const dest = parts.at(-1)!;
        stage.steps.push({
          kind: 'copy',
          from: copy.getFromFlag()?.getValue() ?? undefined,
          sources: parts.slice(0, -1),
          dest,
          line,
          workdir: stage.workdir,
        });
        break;
      }
      case 'RUN':
        stage.steps.push({ kind: 'run', command: args(instruction).join(' '), line, workdir: stage.workdir });
        break;
      case 'LABEL':
      case 'STOPSIGNAL':
        break;
      default:
        throw new Error(`line ${line}: ${keyword} is not replayed by platform/testing/image.ts`);
    }
  }
  if (stages.length === 0) throw new Error('no FROM in the Dockerfile');
  return stages;
}

function args(instruction: Instruction): string[] {
  return instruction.getArguments().map((a) => a.getValue());
}

/** The JSON (exec) form's strings; dockerfile-ast's own JSON strings drop spaces inside values. */
function jsonForm(instruction: Instruction, line: number): string[] {
  const content = instruction.getArgumentsContent() ?? '';
  const start = content.indexOf('[');
  try {
    const parsed: unknown = JSON.parse(content.slice(start));
    if (start >= 0 && Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) return parsed;
  } catch {
    // reported below
  }
  throw new Error(`line ${line}: ${instruction.getKeyword()} must use the JSON (exec) form, e.g. ["node", "server.js"]`);
}

/** Reads the Dockerfile at `dockerfile`; its last stage is what a container of the image starts as. */
export async function readDockerfile(dockerfile: string): Promise<{ stages: Stage[]; final: Stage }> {
  const stages = parseDockerfile(await readFile(dockerfile, 'utf8'));
  const final = stages.at(-1);
  if (!final) throw new Error(`${dockerfile} has no FROM`);
  return { stages, final };
}

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

/** Replays the Dockerfile's stages and starts the final stage's CMD; see the top of this file. */
export async function runImage(options: ImageOptions): Promise<RunningImage> {
  const { stages, final } = await readDockerfile(options.dockerfile);
  const cmd = final.cmd;
  if (!cmd || cmd.length === 0) throw new Error('the final stage has no CMD');
  const { uid, gid } = nonRootUser(final.user);

  const root = await mkdtemp(path.join(tmpdir(), 'promsnap-image-'));
  try {
    // mkdtemp makes a private folder; the image's user must be able to read its files.
    await chmod(root, 0o755);
    refuseStrayNodeModules(root);
    const fsOf = (stage: Stage) => path.join(root, `stage-${stage.index}`);
    const host = (stage: Stage, containerPath: string) => path.join(fsOf(stage), containerPath);
    for (const stage of stages) {
      await mkdir(host(stage, stage.workdir), { recursive: true });
      for (const step of stage.steps) {
        const where = `${path.basename(options.dockerfile)} line ${step.line}`;
        const workdir = host(stage, step.workdir);
        await mkdir(workdir, { recursive: true });
        if (step.kind === 'copy') {
          const source = step.from === undefined ? undefined : stageByRef(stages, step.from, stage, where);
          const sources = step.sources.map((src) =>
            source ? host(source, path.posix.resolve('/', src)) : contextPath(options.context, src, where),
          );
          await copyInto(sources, path.join(workdir, step.dest), step.dest.endsWith('/') || sources.length > 1, where);
        } else {
          for (const command of step.command.split('&&').map((c) => c.trim())) {
            await replayRun(command, { workdir, context: options.context, where });
          }
        }
      }
    }

    const finalWorkdir = host(final, final.workdir);
    const devPackagesChecked = await checkNoDevDependencies(finalWorkdir);
    await makeReadable(fsOf(final));
    // The base image's node, here the pinned one these tests run on, which must be the tag's version.
    checkBaseNode(final.image);
    const bin = path.join(root, 'base', 'bin');
    await mkdir(bin, { recursive: true });
    await linkOrCopy(await realpath(process.execPath), path.join(bin, 'node'));

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const command = cmd[0]!.includes('/') ? host(final, path.posix.resolve(final.workdir, cmd[0]!)) : path.join(bin, cmd[0]!);
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
      stages,
      final,
      workdir: finalWorkdir,
      uid,
      gid,
      devPackagesChecked,
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
        else if (!specifier.startsWith('node:')) packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
  }
  return [...packages].sort();
}

/** USER as uid[:gid]; numeric because Kubernetes' runAsNonRoot can only verify a numeric user. */
function nonRootUser(user: string | undefined): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  if (!match) {
    throw new Error(`the final stage's USER is ${user === undefined ? 'missing' : JSON.stringify(user)}: give a numeric uid[:gid] such as 1000:1000, so runAsNonRoot can check it`);
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
  throw new Error(`${at.where}: RUN ${command} is not replayed by platform/testing/image.ts`);
}

/** The `npm ci` flags an image may use: production-only, per workspace, and npm's quiet flags. */
function npmCiFlags(flags: string[], where: string): { omitDev: boolean; workspaces: string[] } {
  const parsed = { omitDev: false, workspaces: [] as string[] };
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    if (flag === '--omit=dev') parsed.omitDev = true;
    else if (flag === '--workspace' || flag === '-w') parsed.workspaces.push(flags[++i] ?? '');
    else if (flag.startsWith('--workspace=')) parsed.workspaces.push(flag.slice('--workspace='.length));
    else if (flag !== '--no-audit' && flag !== '--no-fund') throw new Error(`${where}: npm ci ${flag} is not replayed by platform/testing/image.ts`);
  }
  if (parsed.workspaces.some((w) => w === '')) throw new Error(`${where}: npm ci --workspace needs a folder`);
  return parsed;
}

async function exec(command: string, argv: string[], cwd: string, where: string): Promise<void> {
  const result = await runCommand(command, argv, { cwd, allowFailure: true });
  if (result.code !== 0) throw new Error(`${where}: ${command} ${argv.join(' ')} exited ${result.code}:\n${(result.stdout + result.stderr).slice(-4_000)}`);
}

/** Node looks for node_modules in every parent folder; one above the image would lend it packages. */
function refuseStrayNodeModules(root: string): void {
  for (let dir = path.dirname(root); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'node_modules'))) {
      throw new Error(`${path.join(dir, 'node_modules')} exists above ${root}: the replayed image could load packages it does not hold`);
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** Every package the lockfile marks dev-only must be absent; returns how many were checked. */
async function checkNoDevDependencies(workdir: string): Promise<number> {
  const lock = JSON.parse(await readFile(path.join(workdir, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, { dev?: boolean }>;
  };
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

async function linkOrCopy(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch {
    await copyFile(source, target);
    await chmod(target, 0o755);
  }
}
