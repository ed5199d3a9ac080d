// The image store (cluster-interfaces.md, Changes 13:30): a folder with one ImageLayout JSON file per
// image reference, which the node reads whenever a pod needs an image, so an image written while the
// cluster runs is runnable at once. A file is replaced atomically (written aside, then renamed), so the
// node never reads half of one.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ImageLayout } from './layout.js';

/** The store's file for a reference: the sha256 of the reference, so any reference makes a safe file name. */
export function storeFile(store: string, reference: string): string {
  return path.join(store, `${createHash('sha256').update(reference).digest('hex')}.json`);
}

/** Writes (or replaces) the layout of layout.reference in the store; returns the file. */
export async function writeToStore(store: string, layout: ImageLayout): Promise<string> {
  await mkdir(store, { recursive: true });
  const file = storeFile(store, layout.reference);
  // Not ending in .json: the node reads only finished files.
  const aside = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(aside, JSON.stringify(layout, null, 2) + '\n');
    await rename(aside, file);
  } catch (err) {
    await rm(aside, { force: true });
    throw err;
  }
  return file;
}

/** Every layout in the store. */
export async function readStore(store: string): Promise<ImageLayout[]> {
  const names = (await readdir(store)).filter((name) => name.endsWith('.json')).sort();
  return Promise.all(names.map(async (name) => JSON.parse(await readFile(path.join(store, name), 'utf8')) as ImageLayout));
}
