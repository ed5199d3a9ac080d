// The environment each function's image sets (the ENV lines of its Dockerfile's last stage). The bench
// runs every function process with it, since what ships is measured: the snapshot image's
// NODE_OPTIONS sizes V8's young generation, which decides how soon spent socket buffers are freed.
import path from 'node:path';
import { readDockerfile } from '../platform/testing/image.js';

export type FunctionName = 'snapshot' | 'simulation';
export type ImageEnvs = Record<FunctionName, Record<string, string>>;

/** Reads functions/<fn>/Dockerfile under sourceRoot (the repository, or the ref being measured). */
export async function readImageEnvs(sourceRoot: string): Promise<ImageEnvs> {
  const read = async (fn: FunctionName) => (await readDockerfile(path.join(sourceRoot, 'functions', fn, 'Dockerfile'))).final.env;
  return { snapshot: await read('snapshot'), simulation: await read('simulation') };
}

/** `NAME=value NAME=value`, for the report. */
export function describeEnv(env: Record<string, string>): string {
  const entries = Object.entries(env);
  return entries.length === 0 ? 'none' : entries.map(([name, value]) => `${name}=${value}`).join(' ');
}
