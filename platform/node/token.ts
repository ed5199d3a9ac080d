// Service account tokens for projected volumes (the kubelet's token manager): a TokenRequest bound to the
// pod (so it dies with the pod, and NodeRestriction lets a node ask only for its own pods), per audience
// and lifetime, asked again once 80 % of its life (at most 24 h) has passed.
import type { V1Pod } from '@kubernetes/client-node';
import type { Kube } from './kube.js';
import type { TokenSpec } from './volumes.js';

export interface IssuedToken {
  token: string;
  /** When the node asks for a new one. */
  refreshAtMs: number;
}

/** The kubelet's refresh rule: past 80 % of the token's life, or older than 24 h. */
export function refreshTime(issuedAtMs: number, expiresAtMs: number): number {
  const life = expiresAtMs - issuedAtMs;
  return issuedAtMs + Math.min(life * 0.8, 24 * 3600_000);
}

export async function requestToken(kube: Kube, pod: V1Pod, spec: TokenSpec, nowMs: number = Date.now()): Promise<IssuedToken> {
  const meta = pod.metadata ?? {};
  const answer = await kube.core.createNamespacedServiceAccountToken({
    name: pod.spec?.serviceAccountName || 'default',
    namespace: meta.namespace ?? 'default',
    body: {
      spec: {
        audiences: spec.audience ? [spec.audience] : [],
        expirationSeconds: spec.expirationSeconds,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: meta.name, uid: meta.uid },
      },
    },
  });
  const token = answer.status?.token;
  if (!token) throw new Error('the API server answered the TokenRequest without a token');
  const expires = answer.status?.expirationTimestamp ? new Date(answer.status.expirationTimestamp).getTime() : nowMs + spec.expirationSeconds * 1000;
  return { token, refreshAtMs: refreshTime(nowMs, expires) };
}
