// The node's connection to the API server through @kubernetes/client-node 2.0.1: typed clients, the patch
// content types, and two of its gotchas handled in one place: MicroTime fields need microseconds (a Date
// serialises with milliseconds and is refused), and a delete's options belong in the body (a query
// parameter is ignored once a body is sent).
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type V1DeleteOptions,
} from '@kubernetes/client-node';

export interface Kube {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  readonly events: EventsV1Api;
  readonly authentication: AuthenticationV1Api;
  readonly authorization: AuthorizationV1Api;
}

export function connectKube(kubeconfigFile: string): Kube {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigFile);
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    events: kubeConfig.makeApiClient(EventsV1Api),
    authentication: kubeConfig.makeApiClient(AuthenticationV1Api),
    authorization: kubeConfig.makeApiClient(AuthorizationV1Api),
  };
}

export const strategicMergePatch: ConfigurationOptions = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
export const mergePatch: ConfigurationOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A MicroTime as the API server accepts it: RFC 3339 with six fractional digits. */
export function microTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The HTTP status of a failed request (client-node's ApiException carries it as code). */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's message of a failed request, or the error's own. */
export function messageOf(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // not JSON
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

/** Delete options with grace and the uid precondition where the API server reads them: in the body. */
export function deleteBody(gracePeriodSeconds: number, uid?: string): V1DeleteOptions {
  return { gracePeriodSeconds, ...(uid ? { preconditions: { uid } } : {}) };
}
