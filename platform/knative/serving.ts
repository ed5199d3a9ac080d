// Knative Serving's release from its module (knative.dev/serving's config/core, plus the CRDs and
// config-network that Serving's repository links in from knative.dev/networking and knative.dev/caching,
// which provision.sh knative-crds puts beside it), with the local cluster's changes:
//   - config-network: our KIngress's class, and mesh-compatibility-mode disabled (there is no mesh: the
//     autoscaler scrapes each pod by its IP);
//   - config-domain: example.com, so Routes get http://<name>.<namespace>.example.com, as on a cluster
//     set up with the README's default domain;
//   - the ingress's own Service (platform/network's ingressServiceObjects), as Kourier's release ships
//     kourier-internal.
// Images stay ko://knative.dev/serving/cmd/<x>: the local node runs them from platform/images' toolImages.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { defaultIngressClass } from '../network/ingress.js';
import { ingressServiceObjects } from '../network/ingress-service.js';
import { MissingToolError } from '../tools/find.js';
import { toolDir, versions } from '../tools/versions.js';
import { asKubeObjects, assembleRelease, configMapPatch, readObjects, releaseFiles, type KnativeRelease } from './release.js';

export const servingNamespace = 'knative-serving';

/** The domain Routes are given (config-domain). */
export const defaultServingDomain = 'example.com';

export interface ServingReleaseOptions {
  /** Where the node's in-cluster ingress listener is (the Service promsnap-ingress points there). */
  ingress: { address: string; port: number };
  domain?: string;
  ingressClass?: string;
  env?: NodeJS.ProcessEnv;
}

/** The module folders: Serving's sources, and networking's and caching's beside them. */
export function servingSources(env: NodeJS.ProcessEnv = process.env): { serving: string; networking: string; caching: string } {
  const root = toolDir('knative-serving-src', env);
  const dirs = { serving: path.join(root, 'src'), networking: path.join(root, 'networking'), caching: path.join(root, 'caching') };
  for (const dir of Object.values(dirs)) {
    if (!existsSync(path.join(dir, 'config'))) {
      throw new MissingToolError(`Knative Serving ${versions.knativeServing}'s release YAML (${dir}/config)`, 'bash platform/tools/provision.sh knative-crds');
    }
  }
  return dirs;
}

export async function servingRelease(options: ServingReleaseOptions): Promise<KnativeRelease> {
  const { serving, networking, caching } = servingSources(options.env);
  const files = await releaseFiles([
    path.join(serving, 'config', 'core'),
    // Symlinks in Serving's repository (config/core/300-resources/*, config/core/configmaps/network.yaml).
    ...['certificate.yaml', 'domain-claim.yaml', 'ingress.yaml', 'serverlessservice.yaml', 'config-network.yaml'].map((f) =>
      path.join(networking, 'config', f),
    ),
    path.join(caching, 'config', 'image.yaml'),
  ]);
  return assembleRelease({
    component: 'serving',
    version: versions.knativeServing,
    namespace: servingNamespace,
    objects: await readObjects(files),
    patches: [
      configMapPatch(
        'config-network',
        { 'ingress-class': options.ingressClass ?? defaultIngressClass, 'mesh-compatibility-mode': 'disabled' },
        'our KIngress; no mesh, so the autoscaler scrapes pods directly',
      ),
      configMapPatch('config-domain', { [options.domain ?? defaultServingDomain]: '' }, 'the domain of every public Route'),
    ],
    extra: asKubeObjects(ingressServiceObjects({ address: options.ingress.address, port: options.ingress.port, namespace: servingNamespace })),
  });
}
