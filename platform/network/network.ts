// The three network components started together on one shared Service catalog (one watch of Services
// and one of EndpointSlices instead of three), closed together: what the node process hosts.
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../functions/runtime/src/logger.js';
import { startServiceCatalog } from './catalog.js';
import { startDns, type DnsOptions, type DnsServer } from './dns.js';
import { startIngress, type IngressOptions, type KnativeIngress } from './ingress.js';
import { startServiceProxy, type ServiceProxy, type ServiceProxyOptions } from './services.js';

type Shared = 'kubeConfig' | 'catalog' | 'log';

export interface NetworkOptions {
  kubeConfig: KubeConfig;
  log?: Logger;
  /** The Service proxy (kube-proxy's job); omitted: not started. */
  services?: Omit<ServiceProxyOptions, Shared>;
  /** The cluster DNS server (CoreDNS's job); omitted: not started. */
  dns?: Omit<DnsOptions, Shared>;
  /** Our KIngress (Kourier's job); omitted: not started. */
  ingress?: Omit<IngressOptions, Shared>;
}

export interface Network {
  readonly services?: ServiceProxy;
  readonly dns?: DnsServer;
  readonly ingress?: KnativeIngress;
  /** Closes each component, then the catalog. Safe to call more than once. */
  close(): Promise<void>;
}

export async function startNetwork(options: NetworkOptions): Promise<Network> {
  const log = options.log ?? createLogger({ fields: { component: 'network' } });
  const catalog = await startServiceCatalog({ kubeConfig: options.kubeConfig, log: log.child({ part: 'catalog' }) });
  const started: Array<{ close(): Promise<void> }> = [];
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const component of started.reverse()) await component.close();
      await catalog.close();
    })();
    return closing;
  };
  const shared = { kubeConfig: options.kubeConfig, catalog };
  try {
    const services = options.services && (await startServiceProxy({ ...options.services, ...shared, log: log.child({ part: 'services' }) }));
    if (services) started.push(services);
    const dns = options.dns && (await startDns({ ...options.dns, ...shared, log: log.child({ part: 'dns' }) }));
    if (dns) started.push(dns);
    const ingress = options.ingress && (await startIngress({ ...options.ingress, ...shared, log: log.child({ part: 'ingress' }) }));
    if (ingress) started.push(ingress);
    return { ...(services ? { services } : {}), ...(dns ? { dns } : {}), ...(ingress ? { ingress } : {}), close };
  } catch (err) {
    await close();
    throw err;
  }
}
