// Services and their EndpointSlices as the API server holds them, watched once and shared: the Service
// proxy, the DNS responder and the ingress all answer from this one cache. Changes are coalesced, so a
// relist of a thousand objects wakes each subscriber once.
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type V1EndpointSlice, type V1Service } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../functions/runtime/src/logger.js';
import { waitSynced, watchObjects } from './watch.js';

/** The label the EndpointSlice controllers put on every slice of a Service. */
export const serviceNameLabel = 'kubernetes.io/service-name';

export interface ServiceCatalog {
  service(namespace: string, name: string): V1Service | undefined;
  services(): readonly V1Service[];
  /** The slices labelled for this Service, whoever wrote them. */
  endpointSlices(namespace: string, serviceName: string): readonly V1EndpointSlice[];
  /** Calls listener (at most once per turn of the event loop) after anything changed; returns an unsubscribe. */
  subscribe(listener: () => void): () => void;
  close(): Promise<void>;
}

export interface ServiceCatalogOptions {
  kubeConfig: KubeConfig;
  log?: Logger;
  /** How long start waits for the first list of each resource; default 30 s. */
  syncTimeoutMs?: number;
}

export async function startServiceCatalog(options: ServiceCatalogOptions): Promise<ServiceCatalog> {
  const log = options.log ?? createLogger({ fields: { component: 'service-catalog' } });
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const discovery = options.kubeConfig.makeApiClient(DiscoveryV1Api);
  const listeners = new Set<() => void>();
  let scheduled = false;
  let slicesByService: Map<string, V1EndpointSlice[]> | undefined;
  const changed = () => {
    slicesByService = undefined;
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      for (const listener of [...listeners]) {
        try {
          listener();
        } catch (err) {
          log.error('subscriber failed', { err });
        }
      }
    });
  };

  const services = watchObjects<V1Service>({
    kubeConfig: options.kubeConfig,
    path: '/api/v1/services',
    list: () => core.listServiceForAllNamespaces(),
    onChange: changed,
    log,
    what: 'services',
  });
  const slices = watchObjects<V1EndpointSlice>({
    kubeConfig: options.kubeConfig,
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    list: () => discovery.listEndpointSliceForAllNamespaces(),
    onChange: changed,
    log,
    what: 'endpointslices.discovery.k8s.io',
  });
  const close = async () => {
    listeners.clear();
    await Promise.all([services.stop(), slices.stop()]);
  };
  try {
    await waitSynced(
      [
        { what: 'services', cache: services },
        { what: 'endpointslices.discovery.k8s.io', cache: slices },
      ],
      options.syncTimeoutMs ?? 30_000,
    );
  } catch (err) {
    await close();
    throw err;
  }

  const index = (): Map<string, V1EndpointSlice[]> => {
    if (slicesByService) return slicesByService;
    const built = new Map<string, V1EndpointSlice[]>();
    for (const slice of slices.list()) {
      const service = slice.metadata?.labels?.[serviceNameLabel];
      if (!service) continue;
      const key = `${slice.metadata?.namespace ?? ''}/${service}`;
      const list = built.get(key);
      if (list) list.push(slice);
      else built.set(key, [slice]);
    }
    slicesByService = built;
    return built;
  };

  return {
    service: (namespace, name) => services.get(namespace, name),
    services: () => services.list(),
    endpointSlices: (namespace, serviceName) => index().get(`${namespace}/${serviceName}`) ?? [],
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close,
  };
}
