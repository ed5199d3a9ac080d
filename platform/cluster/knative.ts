// The Knative release promsnap's manifests are tested against, and how a user installs it. The pinned
// versions are Go module versions (versions.env, the ones the tests take the CRDs from); Knative tags
// its GitHub releases `knative-v1.N.P`, where module v0.M.P is release 1.(M-27).P (knative.dev/serving
// v0.27.0 was Knative 1.0).
import { versions } from '../tools/versions.js';

export type KnativePart = 'serving' | 'eventing';

/** The API groups (and version) each part serves; missing from discovery means the part is not installed. */
export const knativeApiGroups: Record<KnativePart, ReadonlyArray<{ group: string; version: string }>> = {
  serving: [{ group: 'serving.knative.dev', version: 'v1' }],
  eventing: [
    { group: 'eventing.knative.dev', version: 'v1' },
    { group: 'sources.knative.dev', version: 'v1' },
  ],
};

/** The GitHub release tag of a Knative Go module version: 0.51.0 -> knative-v1.24.0. */
export function releaseTag(moduleVersion: string): string {
  const match = /^v?0\.(\d+)\.(\d+)$/.exec(moduleVersion);
  if (!match || Number(match[1]) < 27) throw new Error(`${moduleVersion} is not a Knative 1.x module version (0.27.0 or later)`);
  return `knative-v1.${Number(match[1]) - 27}.${match[2]}`;
}

/** Release files to apply, in order, from each part's GitHub release. */
const releaseFiles: Record<KnativePart, { repo: string; moduleVersion: string; files: string[] }> = {
  serving: { repo: 'knative/serving', moduleVersion: versions.knativeServing, files: ['serving-crds.yaml', 'serving-core.yaml'] },
  eventing: {
    repo: 'knative/eventing',
    moduleVersion: versions.knativeEventing,
    files: ['eventing-crds.yaml', 'eventing-core.yaml', 'in-memory-channel.yaml', 'mt-channel-broker.yaml'],
  },
};

/** `knative-v1.23.0 (knative.dev/serving v0.50.0)`. */
export function releaseName(part: KnativePart): string {
  const { moduleVersion } = releaseFiles[part];
  return `${releaseTag(moduleVersion)} (knative.dev/${part} v${moduleVersion})`;
}

/** The kubectl commands that install a part of Knative at the pinned release. */
export function installCommands(part: KnativePart): string[] {
  const { repo, moduleVersion, files } = releaseFiles[part];
  const base = `https://github.com/${repo}/releases/download/${releaseTag(moduleVersion)}`;
  return files.map((file) => `kubectl apply -f ${base}/${file}`);
}
