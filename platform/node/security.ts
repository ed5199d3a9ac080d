// Which user a container runs as and what the kubelet checks first (kuberuntime verifyRunAsNonRoot,
// securitycontext.DetermineEffectiveSecurityContext): the pod's security context under the container's,
// the image's USER when neither names one, root when the image has none. What the local node cannot
// apply is said, never silently dropped: a rootless node (one mapped user) runs everything as that user,
// and a process gets only its primary group.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ImageLayout } from './images.js';

export type Privilege = 'root' | 'rootless';

export interface RunAs {
  uid: number;
  gid: number;
  /** allowPrivilegeEscalation: false (setpriv --no-new-privs). */
  noNewPrivs: boolean;
  readOnlyRootFilesystem: boolean;
  /** What the node could not honour, for a Warning event. */
  warnings: string[];
}

export type SecurityDecision = { runAs: RunAs } | { error: string };

/** format.Pod: how the kubelet names a pod in messages. */
export function podRef(pod: V1Pod): string {
  return `${pod.metadata?.name ?? ''}_${pod.metadata?.namespace ?? ''}(${pod.metadata?.uid ?? ''})`;
}

export function securityFor(pod: V1Pod, container: V1Container, image: ImageLayout, privilege: Privilege): SecurityDecision {
  const podContext = pod.spec?.securityContext;
  const own = container.securityContext;
  const runAsUser = own?.runAsUser ?? podContext?.runAsUser;
  const runAsGroup = own?.runAsGroup ?? podContext?.runAsGroup;
  const runAsNonRoot = own?.runAsNonRoot ?? podContext?.runAsNonRoot;

  if (runAsNonRoot) {
    if (runAsUser !== undefined) {
      if (runAsUser === 0) return { error: `container's runAsUser breaks non-root policy (pod: "${podRef(pod)}", container: ${container.name})` };
    } else if ((image.user?.uid ?? 0) === 0) {
      return { error: `container has runAsNonRoot and image will run as root (pod: "${podRef(pod)}", container: ${container.name})` };
    }
  }

  const uid = runAsUser ?? image.user?.uid ?? 0;
  // Without runAsGroup the runtime takes the user's group from the image: known here only for the image's own user.
  const gid = runAsGroup ?? (runAsUser === undefined || image.user?.uid === runAsUser ? (image.user?.gid ?? 0) : 0);
  const warnings: string[] = [];
  const extraGroups = [...(podContext?.supplementalGroups ?? []), ...(podContext?.fsGroup !== undefined ? [podContext.fsGroup] : [])].filter((g) => g !== gid);
  if (extraGroups.length > 0) {
    warnings.push(
      `supplementary groups ${[...new Set(extraGroups)].join(',')} are not applied by the local node: container ${container.name} runs with group ${gid} only`,
    );
  }
  const base = { noNewPrivs: own?.allowPrivilegeEscalation === false, readOnlyRootFilesystem: own?.readOnlyRootFilesystem === true };
  if (privilege === 'rootless' && (uid !== 0 || gid !== 0)) {
    warnings.push(
      `container ${container.name} asks for user ${uid}:${gid}; the rootless local node has one mapped user and runs it as that user (uid 0 in the sandbox)`,
    );
    return { runAs: { uid: 0, gid: 0, ...base, warnings } };
  }
  return { runAs: { uid, gid, ...base, warnings } };
}
