// The network components as a process of their own (what kube-proxy, CoreDNS and Kourier are on a
// cluster), for the tests and for running them by hand inside a sandbox; the node process hosts the same
// startNetwork() itself. Wiring only: read the command line, start, log JSON, close on SIGTERM/SIGINT.
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../functions/runtime/src/logger.js';
import { ConfigError, parseNetworkArgs, type NetworkConfig } from './config.js';
import { startNetwork } from './network.js';

let config: NetworkConfig;
try {
  config = parseNetworkArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(2);
}

const log = createLogger({ level: config.logLevel, fields: { component: 'network' } });
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(config.kubeconfig);

try {
  const network = await startNetwork({
    kubeConfig,
    log,
    ...(config.services ? { services: config.services } : {}),
    ...(config.dns ? { dns: config.dns } : {}),
    ...(config.ingress ? { ingress: config.ingress } : {}),
  });
  log.info('network ready', {
    services: config.services !== undefined,
    dns: network.dns && `${network.dns.address}:${network.dns.port}`,
    ingress: network.ingress?.address,
    ingressPublic: network.ingress?.publicAddress,
  });
  const stop = (signal: string) => {
    log.info('stopping', { signal });
    network.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('stop failed', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  log.error('cannot start', { err });
  process.exit(1);
}
