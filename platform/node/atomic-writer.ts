// The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go): a volume's files are written into a new
// timestamped folder, `..data` is swapped to it by renaming a symlink, and each top-level name is a symlink
// through `..data`. A reader (Prometheus watching its config) sees the old set or the new one, never half.
import { lchown, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, chmod, writeFile, chown } from 'node:fs/promises';
import path from 'node:path';
import type { Payload } from './volumes.js';

const dataDirName = '..data';
const newDataDirName = '..data_tmp';

/** The kubelet's rules for a path in a payload: relative, no `..` element, not starting with `..`. */
export function validatePayloadPath(target: string): string | undefined {
  if (target === '') return 'invalid path: must not be empty';
  if (path.posix.isAbsolute(target)) return `invalid path: must be relative path: ${target}`;
  if (target.length > 4096) return 'invalid path: must be less than or equal to 4096 characters';
  const items = target.split('/');
  if (items.includes('..')) return `invalid path: must not contain '..': ${target}`;
  if (items.some((item) => item.length > 255)) return 'invalid path: filenames must be less than or equal to 255 characters';
  if (items[0]!.startsWith('..') && items[0]!.length > 2) return `invalid path: must not start with '..': ${target}`;
  return undefined;
}

function timestampName(now: Date): string {
  const p = (n: number, width = 2) => String(n).padStart(width, '0');
  return `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.`;
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, prefix), { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    files.push(relative);
    if (entry.isDirectory()) files.push(...(await listFiles(dir, relative)));
  }
  return files;
}

async function samePayload(payload: Payload, dir: string): Promise<boolean> {
  const regular: string[] = [];
  for (const file of await listFiles(dir)) if ((await stat(path.join(dir, file))).isFile()) regular.push(file);
  if (regular.length !== payload.size) return false;
  for (const [file, projection] of payload) {
    try {
      const info = await stat(path.join(dir, file));
      if ((info.mode & 0o7777) !== projection.mode) return false;
      if (!(await readFile(path.join(dir, file))).equals(projection.data)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

export interface WriteOptions {
  /** fsGroup: files and folders get this group, readable (writable for folders) by it. */
  fsGroup?: number;
  now?: Date;
}

/** Writes the payload into targetDir (which must exist). Returns false when nothing changed. */
export async function writeAtomically(targetDir: string, payload: Payload, options: WriteOptions = {}): Promise<boolean> {
  const clean: Payload = new Map();
  for (const [file, projection] of payload) {
    const problem = validatePayloadPath(file);
    if (problem) throw new Error(problem);
    clean.set(path.posix.normalize(file), projection);
  }
  const dataDir = path.join(targetDir, dataDirName);
  const oldTs = await readlink(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const oldTsPath = oldTs ? path.join(targetDir, oldTs) : '';

  let toRemove = new Set<string>();
  if (oldTs) {
    const current = await listFiles(oldTsPath).catch(() => [] as string[]);
    const wanted = new Set<string>();
    for (const file of clean.keys()) for (let sub = file; sub && sub !== '.'; sub = path.posix.dirname(sub)) wanted.add(sub);
    toRemove = new Set(current.filter((file) => !wanted.has(file)));
    if (toRemove.size === 0 && (await samePayload(clean, oldTsPath))) return false;
  }

  const tsDir = await mkdtemp(path.join(targetDir, timestampName(options.now ?? new Date())));
  await chmod(tsDir, 0o755);
  try {
    for (const [file, projection] of clean) {
      const full = path.join(tsDir, file);
      await mkdir(path.dirname(full), { recursive: true });
      await writeFile(full, projection.data, { mode: projection.mode });
      await chmod(full, projection.mode);
    }
    if (options.fsGroup !== undefined) await applyGroup(tsDir, options.fsGroup);
    const newDataDir = path.join(targetDir, newDataDirName);
    await rm(newDataDir, { force: true });
    await symlink(path.basename(tsDir), newDataDir);
    await rename(newDataDir, dataDir);
  } catch (err) {
    await rm(tsDir, { recursive: true, force: true });
    throw err;
  }

  for (const file of clean.keys()) {
    const top = file.split('/')[0]!;
    const visible = path.join(targetDir, top);
    const existing = await readlink(visible).catch(() => undefined);
    if (existing === undefined) {
      await symlink(path.posix.join(dataDirName, top), visible);
      if (options.fsGroup !== undefined) await lchown(visible, -1, options.fsGroup);
    }
  }
  for (const file of toRemove) {
    if (file.includes('/')) continue;
    if (!clean.has(file) && ![...clean.keys()].some((f) => f.startsWith(`${file}/`))) await rm(path.join(targetDir, file), { force: true });
  }
  if (oldTsPath) await rm(oldTsPath, { recursive: true, force: true });
  return true;
}

/** fsGroup ownership as the kubelet's SetVolumeOwnership sets it on a volume's files. */
async function applyGroup(dir: string, gid: number): Promise<void> {
  await chown(dir, -1, gid);
  for (const file of await listFiles(dir)) {
    const full = path.join(dir, file);
    const info = await stat(full);
    await chown(full, -1, gid);
    await chmod(full, (info.mode & 0o7777) | (info.isDirectory() ? 0o2070 : 0o040));
  }
}
