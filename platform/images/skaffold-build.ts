// Skaffold's custom builder for the local cluster (skaffold.yaml, profile `local`): does what `docker build`
// of the artifact's Dockerfile does, without a Docker engine. The Dockerfile is replayed by platform/images
// (compile in the build stage, production-only install, the final stage's files laid out, checked) and the
// result is written into the local cluster's image store under the tag Skaffold gives ($IMAGE), where the
// node finds it when a pod names that image. Skaffold then asks the store (through DOCKER_HOST, see
// docker-api.ts) for the image's ID and deploys that tag.
//
//   node --import tsx platform/images/skaffold-build.ts --dockerfile functions/simulation/Dockerfile --store DIR
// with Skaffold's IMAGE and BUILD_CONTEXT in the environment.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage } from './build.js';
import { layoutImageId } from './docker-api.js';

function fail(message: string): never {
  process.stderr.write(`promsnap image build: ${message}\n`);
  process.exit(1);
}

const { values } = parseArgs({ options: { dockerfile: { type: 'string' }, store: { type: 'string' } }, strict: true });
const image = process.env['IMAGE'];
const context = process.env['BUILD_CONTEXT'] ?? process.cwd();
if (!image) fail('IMAGE is not set: this is the custom build command Skaffold runs (skaffold.yaml, profile local)');
if (!values.dockerfile) fail('--dockerfile is required');
if (!values.store) fail("--store is required (the local cluster's image store)");
if (process.env['PUSH_IMAGE'] === 'true') fail('this builder cannot push to a registry: the local profile builds with push: false');
const store = path.resolve(values.store);
if (!existsSync(store)) fail(`no image store at ${store}: start the local cluster first (npm start), with the same PROMSNAP_DATA_DIR`);

const started = Date.now();
try {
  const layout = await buildImage({ dockerfile: path.resolve(context, values.dockerfile), context, reference: image, store });
  process.stdout.write(
    `${image}: ${values.dockerfile} replayed into the local cluster's image store in ${Date.now() - started} ms (${layoutImageId(layout)})\n`,
  );
} catch (err) {
  fail(`${values.dockerfile}: ${(err as Error).message}`);
}
