// The images the local node can run: the image store (a folder with one ImageLayout JSON file per image,
// written by platform/images, also while the cluster runs) read when a pod needs an image, and a pod's
// image reference matched against it as a container runtime would (docker.io and :latest implied). An
// image with no entry is not pulled from anywhere: the container waits with ErrImagePull and a message
// listing what the node runs.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImageLayout } from '../images/index.js';

export type { ImageLayout };

export interface ImageName {
  /** registry/repository, e.g. docker.io/library/busybox; ko:// references stay whole. */
  name: string;
  tag: string | undefined;
  digest: string | undefined;
}

/** Splits and normalises a reference as the Docker reference grammar does. */
export function parseImageReference(reference: string): ImageName {
  if (reference.startsWith('ko://')) return { name: reference, tag: undefined, digest: undefined };
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  const first = parts[0]!;
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasRegistry ? first : 'docker.io';
  const path = hasRegistry ? parts.slice(1) : parts;
  if (registry === 'docker.io' && path.length === 1) path.unshift('library');
  return { name: `${registry}/${path.join('/')}`, tag: tag ?? (digest ? undefined : 'latest'), digest };
}

/** The layout a container's image reference names, if the node has it. */
export function findImage(layouts: readonly ImageLayout[], reference: string): ImageLayout | undefined {
  const wanted = parseImageReference(reference);
  return layouts.find((layout) => {
    const have = parseImageReference(layout.reference);
    if (have.name !== wanted.name) return false;
    if (wanted.digest && have.digest) return wanted.digest === have.digest && (!wanted.tag || wanted.tag === have.tag);
    if (wanted.digest && !wanted.tag) return false;
    return have.tag === wanted.tag;
  });
}

/** The waiting message of an image the node does not have. */
export function unknownImageMessage(reference: string, layouts: readonly ImageLayout[]): string {
  const known = layouts.map((layout) => layout.reference).sort();
  return `image ${reference}: no local build; the local node runs ${known.length ? known.join(', ') : 'no images (the image map is empty)'}`;
}

/** A stable id for a layout (the container status's imageID), so two builds of one tag can be told apart. */
export function imageId(layout: ImageLayout): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(layout)).digest('hex')}`;
}

/** Checks one ImageLayout read from the store; throws naming what is wrong. */
export function parseImageLayout(text: string, file: string): ImageLayout {
  const layout = JSON.parse(text) as Partial<ImageLayout> | null;
  if (!layout || typeof layout.reference !== 'string' || !layout.reference) throw new Error(`${file}: reference must be a non-empty string`);
  if (!Array.isArray(layout.binds) || layout.binds.some((b) => typeof b?.source !== 'string' || typeof b?.target !== 'string' || !b.target.startsWith('/'))) {
    throw new Error(`${file} (${layout.reference}): binds must be [{ source, target }] with absolute targets`);
  }
  const strings = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');
  if (!strings(layout.entrypoint) || !strings(layout.cmd)) throw new Error(`${file} (${layout.reference}): entrypoint and cmd must be string arrays`);
  return {
    reference: layout.reference,
    binds: layout.binds,
    entrypoint: layout.entrypoint,
    cmd: layout.cmd,
    workdir: typeof layout.workdir === 'string' && layout.workdir ? layout.workdir : '/',
    env: layout.env && typeof layout.env === 'object' ? layout.env : {},
    ...(layout.user ? { user: layout.user } : {}),
  };
}

/**
 * The image store, read again when a pod needs an image: a build written while the cluster runs (Skaffold's
 * local profile) is runnable without restarting the node, as a pull would make it. Files are re-read only
 * when they change; one that cannot be read is left out and reported.
 */
export class ImageStore {
  private readonly cache = new Map<string, { mtimeMs: number; layout: ImageLayout }>();

  constructor(
    readonly dir: string,
    private readonly onBadFile: (file: string, err: Error) => void = () => undefined,
  ) {}

  async current(): Promise<ImageLayout[]> {
    const names = (await readdir(this.dir)).filter((name) => name.endsWith('.json'));
    const layouts: ImageLayout[] = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      try {
        const { mtimeMs } = await stat(file);
        let entry = this.cache.get(file);
        if (!entry || entry.mtimeMs !== mtimeMs) {
          entry = { mtimeMs, layout: parseImageLayout(await readFile(file, 'utf8'), file) };
          this.cache.set(file, entry);
        }
        layouts.push(entry.layout);
      } catch (err) {
        this.cache.delete(file);
        this.onBadFile(file, err as Error);
      }
    }
    for (const file of this.cache.keys()) if (!names.includes(path.basename(file))) this.cache.delete(file);
    return layouts;
  }
}
