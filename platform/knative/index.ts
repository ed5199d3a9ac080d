// Knative Serving and Eventing on the local cluster as pods, from their own release YAML (release.ts,
// serving.ts, eventing.ts) applied and waited for as a user's install would be (install.ts).
export { assembleRelease, configMapPatch, readObjects, releaseFiles, type KnativeComponent, type KnativeRelease, type Patch } from './release.js';
export { defaultServingDomain, servingNamespace, servingRelease, servingSources, type ServingReleaseOptions } from './serving.js';
export { eventingNamespace, eventingRelease, eventingSource, type EventingReleaseOptions } from './eventing.js';
export {
  admissionChecks,
  applyKnative,
  describePods,
  installKnativeCrds,
  notYetAvailable,
  waitForKnative,
  type InstallOptions,
  type KnativeTarget,
} from './install.js';
