// A container's root filesystem without images or overlays (overlayfs over `/` is refused here): a tmpfs
// in the pod's mount namespace holding the host's libraries read-only, a generated /etc, a small /dev, a
// fresh /proc, the image's files bound read-only at their paths, and the container's volume mounts; then
// read-only as a whole when readOnlyRootFilesystem asks. Each container gets its own root, so two images
// that both lay out /app do not meet. Everything is mounted in the holder's namespace (mount -N), reached
// for file writes through /proc/<holder>/root: nothing appears in the node's own mount namespace.
// The mounts go in batches, one `mount --fstab F --all` each, rather than one `mount` each: a root has
// 20 to 30 mounts, and 13 pods starting at once (Knative's, on the local cluster) spent 1.2 to 2.1 s
// per container spawning them from the node process; a mount whose target lies under another of the
// batch waits for the next one, so every mount point is made where the container will see it.
import { lstat, mkdir, readlink, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { existsSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from '../tools/command.js';
import { findSystemTool } from '../tools/find.js';
import type { ImageLayout } from './images.js';
import type { Mount } from './volumes.js';

export interface EtcFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
  passwd: string;
  group: string;
}

export interface RootOptions {
  holderPid: number;
  /** The mount point, on the node's disk (an empty folder under the pod's state dir). */
  dir: string;
  image: ImageLayout;
  etc: EtcFiles;
  mounts: Mount[];
  readOnly: boolean;
}

/** Host folders every root gets read-only: the C library and friends for dynamically linked binaries, CA certificates, time zones. */
const hostPaths = ['/usr/lib', '/usr/lib64', '/usr/lib32', '/etc/ssl', '/usr/share/ca-certificates', '/usr/share/zoneinfo'];
const devices = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

export class MountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MountError';
  }
}

/** The path through which the node reaches a path inside the holder's mount namespace. */
export function viaHolder(holderPid: number, file: string): string {
  return `/proc/${holderPid}/root${file}`;
}

async function mountIn(holderPid: number, args: string[]): Promise<void> {
  await runCommand(findSystemTool('mount'), ['-N', `/proc/${holderPid}/ns/mnt`, ...args]);
}

/**
 * Resolves a path inside a root the way the container will see it, following symlinks relative to the
 * root, never out of it (the kubelet's securejoin): the result has no symlink left to follow.
 */
export async function resolveInRoot(root: string, target: string): Promise<string> {
  const pending = target.split('/').filter((p) => p && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const info = await lstat(candidate).catch(() => undefined);
    if (info?.isSymbolicLink()) {
      if (++links > 40) throw new MountError(`too many symlinks resolving ${target}`);
      const link = await readlink(candidate);
      if (link.startsWith('/')) resolved.length = 0;
      pending.unshift(...link.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return `/${resolved.join('/')}`;
}

/** Makes the mount point for target, resolved to inside in the root (a folder, or an empty file for a file mount). */
async function makeMountPoint(root: string, inside: string, target: string, file: boolean): Promise<void> {
  const full = path.join(root, inside);
  try {
    if (file) {
      await mkdir(path.dirname(full), { recursive: true });
      if (!existsSync(full)) await writeFile(full, '');
    } else await mkdir(full, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') throw new MountError(`cannot make the mount point ${target}: it lies in a read-only part of the image`);
    throw err;
  }
}

/** An fstab field: whitespace and backslashes octal-escaped, as libmount unescapes them. */
function fstabField(value: string): string {
  return value.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** Mounts into one root, collected and sent in batches (see the top of this file). */
class MountBatch {
  private pending: Array<{ source: string; at: string; type: string; options: string }> = [];

  constructor(
    private readonly holderPid: number,
    private readonly dir: string,
    private readonly fstab: string,
  ) {}

  /** Queues a mount at target inside the root (its mount point made now); a mount under a queued one sends the queue first. */
  async add(source: string, target: string, type: string, options: string[], file: boolean): Promise<void> {
    const root = viaHolder(this.holderPid, this.dir);
    let inside = await resolveInRoot(root, target);
    const under = (at: string) => this.pending.some((m) => at === m.at || at.startsWith(`${m.at}/`));
    if (under(path.join(this.dir, inside))) {
      await this.flush();
      // What is now mounted on the way may lead elsewhere (a symlink in an image's files).
      inside = await resolveInRoot(root, target);
    }
    await makeMountPoint(root, inside, target, file);
    this.pending.push({ source, at: path.join(this.dir, inside), type, options: options.join(',') });
  }

  async bind(source: string, target: string, readOnly: boolean): Promise<void> {
    const info = await stat(source).catch(() => undefined);
    if (!info) throw new MountError(`mount source ${source} does not exist`);
    await this.add(source, target, 'none', ['bind', ...(readOnly ? ['ro'] : [])], !info.isDirectory());
  }

  /** Mounts what is queued, in order. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending.map((m) => `${fstabField(m.source)} ${fstabField(m.at)} ${m.type} ${m.options} 0 0\n`);
    this.pending = [];
    await writeFile(this.fstab, lines.join(''));
    const result = await runCommand(findSystemTool('mount'), ['-N', `/proc/${this.holderPid}/ns/mnt`, '--fstab', this.fstab, '--all'], { allowFailure: true });
    if (result.code !== 0) throw new MountError(`mount failed: ${result.stderr.trim() || `exit ${result.code}`}`);
  }
}

/** Builds the container's root; returns the path nsenter --root takes (through /proc/<holder>/root). */
export async function buildRoot(options: RootOptions): Promise<string> {
  const { holderPid, dir } = options;
  const root = viaHolder(holderPid, dir);
  await mkdir(dir, { recursive: true });
  await mountIn(holderPid, ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dir]);

  for (const folder of ['usr/bin', 'usr/sbin', 'usr/local/bin', 'etc', 'dev', 'proc', 'sys', 'run', 'var', 'home', 'root', 'tmp'])
    await mkdir(path.join(root, folder), { recursive: true });
  await chmod(path.join(root, 'tmp'), 0o1777);
  await chmod(path.join(root, 'root'), 0o700);
  for (const [link, to] of [
    ['bin', 'usr/bin'],
    ['sbin', 'usr/sbin'],
    ['lib', 'usr/lib'],
    ['lib64', 'usr/lib64'],
    ['var/run', '../run'],
  ] as const) {
    await symlink(to, path.join(root, link));
  }

  const mounts = new MountBatch(holderPid, dir, `${dir}.fstab`);
  for (const host of hostPaths) {
    const info = existsSync(host) ? lstatSync(host) : undefined;
    if (!info || info.isSymbolicLink()) continue;
    await mounts.bind(host, host, true);
  }

  const etc = path.join(root, 'etc');
  await writeFile(path.join(etc, 'hosts'), options.etc.hosts);
  await writeFile(path.join(etc, 'resolv.conf'), options.etc.resolvConf);
  await writeFile(path.join(etc, 'hostname'), `${options.etc.hostname}\n`);
  await writeFile(path.join(etc, 'passwd'), options.etc.passwd);
  await writeFile(path.join(etc, 'group'), options.etc.group);

  // /dev: a few device nodes bound from the host's, shared memory, and a writable termination log.
  await mounts.add('tmpfs', '/dev', 'tmpfs', ['mode=0755', 'nosuid'], false);
  await mounts.flush();
  for (const device of devices) {
    if (existsSync(`/dev/${device}`)) await mounts.bind(`/dev/${device}`, `/dev/${device}`, false);
  }
  await mounts.add('tmpfs', '/dev/shm', 'tmpfs', ['mode=1777', 'nosuid', 'nodev'], false);
  for (const [name, to] of [
    ['fd', '/proc/self/fd'],
    ['stdin', '/proc/self/fd/0'],
    ['stdout', '/proc/self/fd/1'],
    ['stderr', '/proc/self/fd/2'],
  ] as const) {
    await symlink(to, path.join(root, 'dev', name));
  }
  await writeFile(path.join(root, 'dev', 'termination-log'), '', { mode: 0o666 });
  await mounts.flush();

  try {
    await mountIn(holderPid, ['-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', path.join(dir, 'proc')]);
  } catch {
    // A user namespace may refuse a fresh procfs; the sandbox's own, bound, shows the same processes.
    await mountIn(holderPid, ['--rbind', '/proc', path.join(dir, 'proc')]);
  }

  const imageBinds = [...options.image.binds].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  for (const entry of imageBinds) await mounts.bind(entry.source, entry.target, true);

  for (const mount of options.mounts) {
    // A subPath that does not exist yet is made, writable as its volume is (the kubelet makes it too).
    if (!existsSync(mount.source)) {
      await mkdir(mount.source, { recursive: true });
      await chmod(mount.source, 0o777);
    }
    await mounts.bind(mount.source, mount.target, mount.readOnly);
  }
  await mounts.flush();

  if (options.readOnly) await mountIn(holderPid, ['-o', 'remount,bind,ro', dir]);
  return root;
}

/** Unmounts a container's root (before its restart builds a fresh one). */
export async function removeRoot(holderPid: number, dir: string): Promise<void> {
  await runCommand(findSystemTool('umount'), ['-N', `/proc/${holderPid}/ns/mnt`, '--recursive', '--lazy', dir], { allowFailure: true });
}
