// The network parts the node process hosts (platform/network: kube-proxy's, CoreDNS's and Kourier's jobs),
// on the controllers' account: the Service proxy with NodePorts on the node IP, the cluster DNS on
// --cluster-dns:53, and the KIngress on <node IP>:80 (behind knative-serving/promsnap-ingress) and
// <node IP>:8081 (ExternalIP rules, what the host's forward targets). The ingress needs Knative's
// networking CRD: without it (a cluster without Knative) it is not started, and the log says so, unless
// knativeIngress says Knative is on its way (the ingress then watches for the API to appear).
import { ApisApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { defaultIngressClass } from '../network/ingress.js';
import { ingressDomainInternal } from '../network/ingress-service.js';
import { startNetwork, type Network } from '../network/network.js';

/** Where the ingress listens on the node: in-cluster (every rule) and public (ExternalIP rules, for the host's forward). */
export const ingressPorts = { cluster: 80, public: 8081 };

export interface HostedNetworkOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  nodeIp: string;
  clusterDns: string;
  clusterDomain: string;
  /** Start the ingress even if Knative's networking API is not served yet. */
  knativeIngress?: boolean;
}

/** Whether the API server serves Knative's networking group (discovery is open to every account). */
async function knativeIngressServed(kubeConfig: KubeConfig): Promise<boolean> {
  try {
    const groups = await kubeConfig.makeApiClient(ApisApi).getAPIVersions();
    return groups.groups.some((g) => g.name === 'networking.internal.knative.dev' && g.versions.some((v) => v.version === 'v1alpha1'));
  } catch {
    return false;
  }
}

export async function startHostedNetwork(options: HostedNetworkOptions): Promise<Network> {
  const { kubeConfig, log, nodeIp } = options;
  const withIngress = options.knativeIngress === true || (await knativeIngressServed(kubeConfig));
  if (!withIngress) log.info('the KIngress is not started: the API server does not serve networking.internal.knative.dev ingresses (Knative is not installed)');
  return startNetwork({
    kubeConfig,
    log: log.child({ part: 'network' }),
    services: { nodeAddress: nodeIp },
    dns: { address: options.clusterDns, port: 53, domain: options.clusterDomain },
    ...(withIngress
      ? {
          ingress: {
            ingressClass: defaultIngressClass,
            listen: { host: nodeIp, port: ingressPorts.cluster },
            publicListen: { host: nodeIp, port: ingressPorts.public },
            domainInternal: ingressDomainInternal({}, options.clusterDomain),
          },
        }
      : {}),
  });
}
