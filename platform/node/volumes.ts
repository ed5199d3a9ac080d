// A pod's volumes as the kubelet lays them out, pure: which volumes the node supports and where each lives,
// the files of ConfigMap, Secret, downwardAPI and projected volumes (pkg/volume/{configmap,secret,
// downwardapi,projected} MakePayload: items, modes, optional), and each container's mounts (subPath,
// subPathExpr, readOnly; the kubelet mounts those four kinds read-only). The runtime writes and mounts.
import path from 'node:path';
import type { V1Container, V1KeyToPath, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { expandReferences } from '../manifests/pods.js';
import { fieldRefValue, resourceFieldRefValue, type DownwardContext } from './env.js';

export interface FileProjection {
  data: Buffer;
  mode: number;
}

/** Relative path in the volume -> file. */
export type Payload = Map<string, FileProjection>;

export type VolumePlan =
  | { name: string; kind: 'emptyDir'; memory: boolean }
  | { name: string; kind: 'files'; plugin: 'configmap' | 'secret' | 'downward-api' | 'projected' }
  | { name: string; kind: 'claim'; claimName: string; readOnly: boolean };

/** The kubelet's folder name per plugin, under <pod>/volumes/. */
export function pluginDir(plan: VolumePlan): string {
  if (plan.kind === 'emptyDir') return 'kubernetes.io~empty-dir';
  if (plan.kind === 'claim') return 'kubernetes.io~local-volume';
  return `kubernetes.io~${plan.plugin}`;
}

const unsupportedReason = (volume: V1Volume): string => {
  const source = Object.keys(volume).find((key) => key !== 'name') ?? 'no source';
  if (source === 'hostPath') return `volume ${volume.name}: hostPath volumes are not supported by the local node (it writes only under its state directory)`;
  return `volume ${volume.name}: ${source} volumes are not supported by the local node (it has emptyDir, configMap, secret, downwardAPI, projected and persistentVolumeClaim)`;
};

/** Every volume of the pod planned, or the reason the pod cannot be set up (FailedMount). */
export function planVolumes(pod: V1Pod): { plans: VolumePlan[] } | { error: string } {
  const plans: VolumePlan[] = [];
  for (const volume of pod.spec?.volumes ?? []) {
    if (volume.emptyDir) plans.push({ name: volume.name, kind: 'emptyDir', memory: volume.emptyDir.medium === 'Memory' });
    else if (volume.configMap) plans.push({ name: volume.name, kind: 'files', plugin: 'configmap' });
    else if (volume.secret) plans.push({ name: volume.name, kind: 'files', plugin: 'secret' });
    else if (volume.downwardAPI) plans.push({ name: volume.name, kind: 'files', plugin: 'downward-api' });
    else if (volume.projected) {
      const odd = (volume.projected.sources ?? []).find((s) => s.clusterTrustBundle || s.podCertificate);
      if (odd)
        return {
          error: `volume ${volume.name}: ${odd.clusterTrustBundle ? 'clusterTrustBundle' : 'podCertificate'} projections are not supported by the local node`,
        };
      plans.push({ name: volume.name, kind: 'files', plugin: 'projected' });
    } else if (volume.persistentVolumeClaim) {
      plans.push({
        name: volume.name,
        kind: 'claim',
        claimName: volume.persistentVolumeClaim.claimName,
        readOnly: volume.persistentVolumeClaim.readOnly ?? false,
      });
    } else return { error: unsupportedReason(volume) };
  }
  return { plans };
}

/** What the files of a pod's volumes are made from. */
export interface VolumeObjects {
  /** ConfigMaps present in the namespace: data as text, binaryData base64. */
  configMaps: ReadonlyMap<string, { data?: Record<string, string>; binaryData?: Record<string, string> }>;
  /** Secrets present in the namespace: data base64, as the API gives it. */
  secrets: ReadonlyMap<string, { data?: Record<string, string> }>;
  /** Service account tokens by projection (tokenKey). */
  tokens: ReadonlyMap<string, string>;
  downward: DownwardContext;
}

/** The token a serviceAccountToken projection asks for: one TokenRequest per audience and lifetime. */
export interface TokenSpec {
  audience: string | undefined;
  expirationSeconds: number;
}

export function tokenKey(spec: TokenSpec): string {
  return `${spec.audience ?? ''}/${spec.expirationSeconds}`;
}

/** The tokens a pod's projected volumes need. */
export function tokenSpecs(pod: V1Pod): TokenSpec[] {
  const specs = new Map<string, TokenSpec>();
  for (const volume of pod.spec?.volumes ?? []) {
    for (const source of volume.projected?.sources ?? []) {
      const token = source.serviceAccountToken;
      if (!token) continue;
      const spec = { audience: token.audience || undefined, expirationSeconds: token.expirationSeconds ?? 3600 };
      specs.set(tokenKey(spec), spec);
    }
  }
  return [...specs.values()];
}

/** Names of the ConfigMaps and Secrets a pod's volumes read. */
export function volumeReferences(pod: V1Pod): { configMaps: string[]; secrets: string[] } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const volume of pod.spec?.volumes ?? []) {
    if (volume.configMap?.name) configMaps.add(volume.configMap.name);
    if (volume.secret?.secretName) secrets.add(volume.secret.secretName);
    for (const source of volume.projected?.sources ?? []) {
      if (source.configMap?.name) configMaps.add(source.configMap.name);
      if (source.secret?.name) secrets.add(source.secret.name);
    }
  }
  return { configMaps: [...configMaps], secrets: [...secrets] };
}

type Keyed = Map<string, Buffer>;

function keyedPayload(
  kind: 'configmap' | 'secret',
  name: string,
  values: Keyed | undefined,
  items: V1KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean,
  into: Payload,
): string | undefined {
  if (!values) {
    if (optional) return undefined;
    return `${kind} "${name}" not found`;
  }
  if (!items || items.length === 0) {
    for (const [key, data] of values) into.set(key, { data, mode: defaultMode });
    return undefined;
  }
  for (const item of items) {
    const data = values.get(item.key);
    if (!data) {
      if (optional) continue;
      return kind === 'configmap' ? `configmap references non-existent config key: ${item.key}` : `references non-existent secret key: ${item.key}`;
    }
    into.set(item.path, { data, mode: item.mode ?? defaultMode });
  }
  return undefined;
}

function configMapValues(objects: VolumeObjects, name: string): Keyed | undefined {
  const found = objects.configMaps.get(name);
  if (!found) return undefined;
  const values: Keyed = new Map();
  for (const [key, value] of Object.entries(found.data ?? {})) values.set(key, Buffer.from(value, 'utf8'));
  for (const [key, value] of Object.entries(found.binaryData ?? {})) values.set(key, Buffer.from(value, 'base64'));
  return values;
}

function secretValues(objects: VolumeObjects, name: string): Keyed | undefined {
  const found = objects.secrets.get(name);
  if (!found) return undefined;
  return new Map(Object.entries(found.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')]));
}

function downwardValue(
  item: { fieldRef?: { fieldPath: string }; resourceFieldRef?: { resource: string; containerName?: string; divisor?: string } },
  pod: V1Pod,
  context: DownwardContext,
): string {
  if (item.fieldRef) return fieldRefValue(item.fieldRef.fieldPath, context);
  const ref = item.resourceFieldRef!;
  const container = pod.spec?.containers.find((c) => c.name === ref.containerName) ?? pod.spec!.containers[0]!;
  return resourceFieldRefValue(ref, container, context);
}

/** The files of a configMap, secret, downwardAPI or projected volume, or why it cannot be set up. */
export function volumePayload(volume: V1Volume, objects: VolumeObjects): { payload: Payload } | { error: string } {
  const payload: Payload = new Map();
  const pod = objects.downward.pod;
  let error: string | undefined;
  try {
    if (volume.configMap) {
      const source = volume.configMap;
      error = keyedPayload(
        'configmap',
        source.name ?? '',
        configMapValues(objects, source.name ?? ''),
        source.items,
        source.defaultMode ?? 0o644,
        source.optional ?? false,
        payload,
      );
    } else if (volume.secret) {
      const source = volume.secret;
      error = keyedPayload(
        'secret',
        source.secretName ?? '',
        secretValues(objects, source.secretName ?? ''),
        source.items,
        source.defaultMode ?? 0o644,
        source.optional ?? false,
        payload,
      );
    } else if (volume.downwardAPI) {
      const mode = volume.downwardAPI.defaultMode ?? 0o644;
      for (const item of volume.downwardAPI.items ?? [])
        payload.set(item.path, { data: Buffer.from(downwardValue(item, pod, objects.downward)), mode: item.mode ?? mode });
    } else if (volume.projected) {
      const mode = volume.projected.defaultMode ?? 0o644;
      for (const source of volume.projected.sources ?? []) {
        if (source.configMap) {
          const ref = source.configMap;
          error = keyedPayload('configmap', ref.name ?? '', configMapValues(objects, ref.name ?? ''), ref.items, mode, ref.optional ?? false, payload);
        } else if (source.secret) {
          const ref = source.secret;
          error = keyedPayload('secret', ref.name ?? '', secretValues(objects, ref.name ?? ''), ref.items, mode, ref.optional ?? false, payload);
        } else if (source.downwardAPI) {
          for (const item of source.downwardAPI.items ?? [])
            payload.set(item.path, { data: Buffer.from(downwardValue(item, pod, objects.downward)), mode: item.mode ?? mode });
        } else if (source.serviceAccountToken) {
          const spec = { audience: source.serviceAccountToken.audience || undefined, expirationSeconds: source.serviceAccountToken.expirationSeconds ?? 3600 };
          const token = objects.tokens.get(tokenKey(spec));
          if (token === undefined) error = `no service account token yet for audience ${spec.audience ?? '(the API server)'}`;
          else payload.set(source.serviceAccountToken.path, { data: Buffer.from(token), mode });
        }
        if (error) break;
      }
    } else error = `volume ${volume.name} has no files to write`;
  } catch (err) {
    error = (err as Error).message;
  }
  if (error) return { error: `MountVolume.SetUp failed for volume "${volume.name}": ${error}` };
  return { payload };
}

export interface Mount {
  /** Host path (in the node's mount namespace). */
  source: string;
  /** Absolute path in the container. */
  target: string;
  readOnly: boolean;
}

/** Joins a subPath to a volume's folder, refusing anything that leaves it (the kubelet's subpath checks). */
export function joinSubPath(dir: string, subPath: string): string | undefined {
  if (path.posix.isAbsolute(subPath) || subPath.split('/').includes('..')) return undefined;
  return path.posix.join(dir, subPath);
}

/**
 * A container's mounts, shallowest first (as containerd sorts them), or why they cannot be made.
 * `volumeDirs` maps each volume to its folder on the node.
 */
export function containerMounts(
  container: V1Container,
  pod: V1Pod,
  volumeDirs: ReadonlyMap<string, string>,
  env: Record<string, string>,
): { mounts: Mount[] } | { error: string } {
  const readOnlyKinds = new Set((pod.spec?.volumes ?? []).filter((v) => v.configMap || v.secret || v.downwardAPI || v.projected).map((v) => v.name));
  const claimReadOnly = new Set((pod.spec?.volumes ?? []).filter((v) => v.persistentVolumeClaim?.readOnly).map((v) => v.name));
  const mounts: Mount[] = [];
  const seen = new Set<string>();
  for (const mount of container.volumeMounts ?? ([] as V1VolumeMount[])) {
    const dir = volumeDirs.get(mount.name);
    if (!dir) return { error: `container ${container.name} mounts volume ${mount.name}, which the pod does not define` };
    if (!path.posix.isAbsolute(mount.mountPath)) return { error: `container ${container.name}: mountPath ${mount.mountPath} is not absolute` };
    const target = path.posix.resolve(mount.mountPath);
    if (seen.has(target)) return { error: `container ${container.name}: two volumes are mounted at ${target}` };
    seen.add(target);
    const subPath = mount.subPathExpr ? expandReferences(mount.subPathExpr, env) : mount.subPath;
    const source = subPath ? joinSubPath(dir, subPath) : dir;
    if (!source) return { error: `container ${container.name}: subPath ${subPath} of volume ${mount.name} must be a relative path inside it` };
    mounts.push({ source, target, readOnly: (mount.readOnly ?? false) || readOnlyKinds.has(mount.name) || claimReadOnly.has(mount.name) });
  }
  mounts.sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  return { mounts };
}
