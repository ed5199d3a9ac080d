// The functions as they ship: compiled JavaScript from `tsc -p tsconfig.build.json`, emitted into a
// temporary folder rather than dist/ (which a developer may be using). The two bench-only entry
// points that run as their own processes (the naive baseline and the bare Express server) are
// compiled alongside, so every process measured runs plain JS under the same Node.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export interface Build {
  /** Folder laid out like the repository: <outDir>/functions/snapshot/src/server.js, ... */
  outDir: string;
  /** Absolute path of a compiled module, from its source path relative to the repository. */
  js(source: string): string;
  /** tsc's diagnostics, if it printed any (it emits anyway). */
  diagnostics: string;
  dispose(): Promise<void>;
}

export const benchEntryPoints = ['bench/naive.ts', 'bench/bare-server.ts'];

export async function compileFunctions(): Promise<Build> {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-bench-build-'));
  const outDir = path.join(dir, 'out');
  const base = path.join(repoRoot, 'tsconfig.build.json');
  // The project's build config, only with another outDir and two more entry points.
  const config = {
    extends: base,
    // Type roots are looked up from the config's folder, which is not the repository's.
    compilerOptions: { rootDir: repoRoot, outDir, sourceMap: false, typeRoots: [path.join(repoRoot, 'node_modules/@types')] },
    include: [
      path.join(repoRoot, 'events/src'),
      path.join(repoRoot, 'functions/*/src'),
      ...benchEntryPoints.map((p) => path.join(repoRoot, p)),
    ],
    exclude: [path.join(repoRoot, '**/test/**')],
  };
  const configFile = path.join(dir, 'tsconfig.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const tsc = path.join(repoRoot, 'node_modules/.bin/tsc');
  const diagnostics = await new Promise<string>((resolve, reject) => {
    execFile(tsc, ['-p', configFile], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      // tsc exits 2 on type errors but still emits; a missing compiler is a real failure.
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`${tsc} not found: run npm install`));
      else resolve(`${stdout}${stderr}`.trim());
    });
  });
  // ESM like the repository (package.json "type": "module"), with the repository's dependencies.
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'package.json'), JSON.stringify({ type: 'module' }));
  await symlink(path.join(repoRoot, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  return {
    outDir,
    diagnostics,
    js: (source) => path.join(outDir, source.replace(/\.ts$/, '.js')),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
