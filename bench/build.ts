// The functions as they ship: compiled JavaScript from `tsc -p tsconfig.build.json`, emitted into a
// temporary folder rather than dist/ (which a developer may be using). The two bench-only entry
// points that run as their own processes (the naive baseline and the bare Express server) are
// compiled alongside, so every process measured runs plain JS under the same Node.
//
// By default the working tree is compiled (to measure a change before committing it); with a git
// ref, that commit's events/ and functions/ are (so a run is not skewed by someone's half-made edit).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../platform/tools/command.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export interface Build {
  /** Folder laid out like the repository: <outDir>/functions/snapshot/src/server.js, ... */
  outDir: string;
  /** Absolute path of a compiled module, from its source path relative to the repository. */
  js(source: string): string;
  /** Folder holding the sources compiled (the repository, or the ref's files): tsx runs from here. */
  sourceRoot: string;
  /** What was compiled, for the report: a commit, or the working tree and what differs from HEAD. */
  source: string;
  /** tsc's diagnostics, if it printed any (it emits anyway). */
  diagnostics: string;
  dispose(): Promise<void>;
}

export const benchEntryPoints = ['bench/naive.ts', 'bench/bare-server.ts'];
const measured = ['events', 'archive', 'functions', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];

async function run(command: string, args: string[], options: { cwd: string }): Promise<string> {
  return (await runCommand(command, args, options)).stdout;
}

async function describeSource(ref: string | undefined): Promise<string> {
  const commit = (await run('git', ['rev-parse', '--short', ref ?? 'HEAD'], { cwd: repoRoot })).trim();
  if (ref) return `commit ${commit} (${ref})`;
  const dirty = (await run('git', ['status', '--porcelain', '--', ...measured], { cwd: repoRoot })).trimEnd();
  if (!dirty) return `working tree, clean at ${commit}`;
  const files = dirty.split('\n').map((line) => line.slice(3));
  return `working tree at ${commit} with uncommitted changes in ${files.join(', ')}`;
}

export async function compileFunctions(options: { ref?: string } = {}): Promise<Build> {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-bench-build-'));
  try {
    const source = await describeSource(options.ref);
    let sourceRoot = repoRoot;
    if (options.ref) {
      sourceRoot = path.join(dir, 'src');
      await mkdir(path.join(sourceRoot, 'bench'), { recursive: true });
      const archive = path.join(dir, 'source.tar');
      // Older commits lack some of the measured folders (archive/ came with range exports).
      const present = (await run('git', ['ls-tree', '--name-only', options.ref, '--', ...measured], { cwd: repoRoot })).split('\n').filter(Boolean);
      await run('git', ['archive', '--format=tar', '-o', archive, options.ref, '--', ...present], { cwd: repoRoot });
      await run('tar', ['-xf', archive, '-C', sourceRoot], { cwd: dir });
      for (const entry of benchEntryPoints) await copyFile(path.join(repoRoot, entry), path.join(sourceRoot, entry));
      // Imports of packages resolve from the sources' folder upwards.
      await symlink(path.join(repoRoot, 'node_modules'), path.join(sourceRoot, 'node_modules'), 'dir');
    }
    const outDir = path.join(dir, 'out');
    // The project's build config, only with another outDir and two more entry points.
    const config = {
      extends: path.join(sourceRoot, 'tsconfig.build.json'),
      // Type roots are looked up from the config's folder, which is not the repository's.
      compilerOptions: { rootDir: sourceRoot, outDir, sourceMap: false, typeRoots: [path.join(repoRoot, 'node_modules/@types')] },
      include: [
        path.join(sourceRoot, 'events/src'),
        path.join(sourceRoot, 'archive/src'),
        path.join(sourceRoot, 'functions/*/src'),
        ...benchEntryPoints.map((p) => path.join(sourceRoot, p)),
      ],
      exclude: [path.join(sourceRoot, '**/test/**')],
    };
    const configFile = path.join(dir, 'tsconfig.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const tsc = path.join(repoRoot, 'node_modules/.bin/tsc');
    if (!existsSync(tsc)) throw new Error(`${tsc} not found: run npm install`);
    // tsc exits 2 on type errors but still emits.
    const compiled = await runCommand(tsc, ['-p', configFile], { cwd: repoRoot, allowFailure: true });
    const diagnostics = `${compiled.stdout}${compiled.stderr}`.trim();
    // ESM like the repository (package.json "type": "module"), with the repository's dependencies.
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
    await symlink(path.join(repoRoot, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
    return {
      outDir,
      sourceRoot,
      source,
      diagnostics,
      js: (file) => path.join(outDir, file.replace(/\.ts$/, '.js')),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
