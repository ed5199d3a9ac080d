// Knative Eventing's release from its module (knative.dev/eventing's config/): what eventing-core.yaml,
// in-memory-channel.yaml and mt-channel-broker.yaml are made of, as a user installs them. Nothing is
// changed; images stay ko://knative.dev/eventing/cmd/<x>, run by the local node from toolImages (the
// integration images the controller's environment names are never run by the platform).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { MissingToolError } from '../tools/find.js';
import { toolDir, versions } from '../tools/versions.js';
import { assembleRelease, readObjects, releaseFiles, type KnativeRelease } from './release.js';

export const eventingNamespace = 'knative-eventing';

export interface EventingReleaseOptions {
  env?: NodeJS.ProcessEnv;
}

export function eventingSource(env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.join(toolDir('knative-eventing-src', env), 'src');
  if (!existsSync(path.join(dir, 'config'))) {
    throw new MissingToolError(`Knative Eventing ${versions.knativeEventing}'s release YAML (${dir}/config)`, 'bash platform/tools/provision.sh knative-crds');
  }
  return dir;
}

export async function eventingRelease(options: EventingReleaseOptions = {}): Promise<KnativeRelease> {
  const config = path.join(eventingSource(options.env), 'config');
  const files = await releaseFiles([
    path.join(config, 'core'),
    // Symlinks in Eventing's repository (config/core/configmaps/eventing-{integrations,transformations}-images.yaml), absent
    // from its module: the images of integration sources and sinks, which the controller's environment names.
    path.join(config, '..', 'third_party', 'eventing-integrations-latest', 'eventing-integrations-images.yaml'),
    path.join(config, '..', 'third_party', 'eventing-integrations-latest', 'eventing-transformations-images.yaml'),
    path.join(config, 'channels', 'in-memory-channel'),
    path.join(config, 'brokers', 'mt-channel-broker'),
  ]);
  return assembleRelease({ component: 'eventing', version: versions.knativeEventing, namespace: eventingNamespace, objects: await readObjects(files) });
}
