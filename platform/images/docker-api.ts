// The image store as Skaffold's "local Docker daemon". Skaffold's custom builder, when it does not push,
// asks the local daemon for the image it just built (build/custom/build.go: ImageID) and then tags it by
// that ID (docker.TagWithImageID): the tag it deploys is <name>:<image id>. There is no Docker engine on
// the local cluster's machine; its images are the node's image store. So the store answers the few calls
// of the Docker Engine API that Skaffold's local builder makes, on a unix socket (DOCKER_HOST):
//   GET|HEAD /_ping, GET /version, GET /images/{name}/json (inspect), POST /images/{name}/tag,
//   GET /images/json (list, reference filter), DELETE /images/{name} (untag / remove), GET /system/df.
// Everything else is refused with 501 naming what this is. An image's ID is the sha256 of its layout
// without its reference, so every tag of one build has one ID, as in Docker.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { ImageLayout } from './layout.js';
import { readStore, storeFile, writeToStore } from './store.js';

/** The API version this answers as (Docker 27's, which Skaffold 2.16's client speaks). */
export const dockerApiVersion = '1.47';

export interface StoredImage {
  id: string;
  references: string[];
  layout: ImageLayout;
  /** When the newest of its store files was written. */
  created: Date;
}

/** The ID a layout has as an image: the same for every reference it is stored under. */
export function layoutImageId(layout: ImageLayout): string {
  const { reference: _reference, ...content } = layout;
  return `sha256:${createHash('sha256').update(JSON.stringify(content)).digest('hex')}`;
}

/** A reference as Docker completes it: no tag and no digest means :latest. */
export function withDefaultTag(reference: string): string {
  const lastSlash = reference.lastIndexOf('/');
  return reference.includes('@') || reference.lastIndexOf(':') > lastSlash ? reference : `${reference}:latest`;
}

/** The store's images, grouped by ID, each with every reference it is stored under. */
export async function storedImages(store: string): Promise<StoredImage[]> {
  if (!existsSync(store)) return [];
  const byId = new Map<string, StoredImage>();
  for (const layout of await readStore(store)) {
    const id = layoutImageId(layout);
    const created = (await stat(storeFile(store, layout.reference)).catch(() => undefined))?.mtime ?? new Date(0);
    const image = byId.get(id);
    if (image) {
      image.references.push(layout.reference);
      if (created > image.created) image.created = created;
    } else byId.set(id, { id, references: [layout.reference], layout, created });
  }
  return [...byId.values()];
}

/** The image a name means: a reference it is stored under, its full ID, or an unambiguous ID prefix (12+ hex). */
export function findStored(images: readonly StoredImage[], name: string): StoredImage | undefined {
  const byReference = images.find((image) => image.references.includes(withDefaultTag(name)));
  if (byReference) return byReference;
  const hex = name.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{12,64}$/.test(hex)) return undefined;
  const matches = images.filter((image) => image.id.slice('sha256:'.length).startsWith(hex));
  return matches.length === 1 ? matches[0] : undefined;
}

/** `docker image inspect`'s answer for a stored image: its config as the Dockerfile's final stage sets it. */
export function inspectAnswer(image: StoredImage): Record<string, unknown> {
  const { layout } = image;
  const env = Object.entries(layout.env).map(([k, v]) => `${k}=${v}`);
  const user = layout.user ? `${layout.user.uid}:${layout.user.gid}` : '';
  return {
    Id: image.id,
    RepoTags: image.references.filter((r) => !r.includes('@')),
    RepoDigests: [],
    Created: image.created.toISOString(),
    Architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    Os: 'linux',
    Size: 0,
    Config: {
      Env: env,
      Cmd: layout.cmd,
      Entrypoint: layout.entrypoint.length > 0 ? layout.entrypoint : null,
      WorkingDir: layout.workdir,
      User: user,
      Labels: {},
    },
    RootFS: { Type: 'layers', Layers: [] },
    Metadata: { LastTagTime: image.created.toISOString() },
  };
}

function summary(image: StoredImage): Record<string, unknown> {
  return {
    Id: image.id,
    ParentId: '',
    RepoTags: image.references.filter((r) => !r.includes('@')),
    RepoDigests: [],
    Created: Math.floor(image.created.getTime() / 1000),
    Size: 0,
    SharedSize: -1,
    Labels: {},
    Containers: 0,
  };
}

/** Docker's reference filter: the pattern matches the repository, or repository:tag, with * globs. */
export function matchesReference(reference: string, pattern: string): boolean {
  const glob = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  const full = withDefaultTag(reference);
  const repository = full.slice(0, full.lastIndexOf(':'));
  return glob.test(full) || glob.test(repository);
}

interface Answer {
  status: number;
  body?: unknown;
}

const notFound = (name: string): Answer => ({ status: 404, body: { message: `No such image: ${name}` } });

/** One request against the store; pure apart from reading and writing the store. */
export async function answer(store: string, method: string, url: URL): Promise<Answer> {
  const route = url.pathname.replace(/^\/v1\.\d+(?=\/)/, '');
  if (route === '/_ping') return { status: 200, body: 'OK' };
  if (route === '/version' && method === 'GET') {
    return {
      status: 200,
      body: {
        Platform: { Name: 'promsnap local cluster image store' },
        Version: '0.1.0',
        ApiVersion: dockerApiVersion,
        MinAPIVersion: '1.24',
        Os: 'linux',
        Arch: process.arch === 'x64' ? 'amd64' : process.arch,
        Components: [],
      },
    };
  }
  if (route === '/system/df' && method === 'GET') {
    return { status: 200, body: { LayersSize: 0, Images: (await storedImages(store)).map(summary), Containers: [], Volumes: [], BuildCache: [] } };
  }
  if (route === '/images/json' && method === 'GET') {
    const filters = JSON.parse(url.searchParams.get('filters') || '{}') as Record<string, Record<string, boolean> | string[]>;
    const wanted = filters['reference'];
    const patterns = Array.isArray(wanted) ? wanted : Object.keys(wanted ?? {});
    const images = (await storedImages(store)).filter(
      (image) => patterns.length === 0 || image.references.some((r) => patterns.some((p) => matchesReference(r, p))),
    );
    return { status: 200, body: images.map(summary) };
  }
  const inspect = /^\/images\/(.+)\/json$/.exec(route);
  if (inspect && method === 'GET') {
    const name = decodeURIComponent(inspect[1]!);
    const image = findStored(await storedImages(store), name);
    return image ? { status: 200, body: inspectAnswer(image) } : notFound(name);
  }
  const tag = /^\/images\/(.+)\/tag$/.exec(route);
  if (tag && method === 'POST') {
    const name = decodeURIComponent(tag[1]!);
    const image = findStored(await storedImages(store), name);
    if (!image) return notFound(name);
    const repo = url.searchParams.get('repo');
    if (!repo) return { status: 400, body: { message: 'repository name (repo) must be given' } };
    await writeToStore(store, { ...image.layout, reference: `${repo}:${url.searchParams.get('tag') || 'latest'}` });
    return { status: 201 };
  }
  const remove = /^\/images\/(.+)$/.exec(route);
  if (remove && method === 'DELETE') {
    const name = decodeURIComponent(remove[1]!);
    const image = findStored(await storedImages(store), name);
    if (!image) return notFound(name);
    // By reference: that tag goes, and the image with its last tag (as `docker rmi <tag>`); by ID: every tag.
    const byReference = image.references.includes(withDefaultTag(name));
    const untag = byReference ? [withDefaultTag(name)] : image.references;
    for (const reference of untag) await rm(storeFile(store, reference), { force: true });
    const gone = untag.length === image.references.length;
    return { status: 200, body: [...untag.map((r) => ({ Untagged: r })), ...(gone ? [{ Deleted: image.id }] : [])] };
  }
  return {
    status: 501,
    body: {
      message: `${method} ${route}: the local cluster's image store answers only the image calls Skaffold's local builder makes (platform/images/docker-api.ts)`,
    },
  };
}

export interface DockerApi {
  readonly socket: string;
  close(): Promise<void>;
}

/** Serves the store's Docker Engine API on a unix socket (removed on close). */
export async function serveDockerApi(options: { store: string; socket: string; log?: (line: string) => void }): Promise<DockerApi> {
  await rm(options.socket, { force: true });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    const method = req.method ?? 'GET';
    req.resume();
    void answer(options.store, method, url)
      .catch((err: Error): Answer => ({ status: 500, body: { message: err.message } }))
      .then(({ status, body }) => {
        if (status >= 400) options.log?.(`docker api: ${method} ${url.pathname}${url.search}: ${status} ${JSON.stringify(body)}`);
        const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
        res.writeHead(status, {
          'Api-Version': dockerApiVersion,
          'Docker-Experimental': 'false',
          Ostype: 'linux',
          'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
        });
        res.end(method === 'HEAD' ? undefined : text);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socket, () => resolve());
  });
  return {
    socket: options.socket,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(options.socket, { force: true });
    },
  };
}
