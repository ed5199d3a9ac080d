// The command line of the standalone network host (main.ts), checked in one place: every problem is
// named in one message, and what is not asked for is not started.
import { parseArgs } from 'node:util';
import net from 'node:net';
import { logLevels, type LogLevel } from '../../functions/runtime/src/logger.js';
import { defaultIngressClass, type ListenAddress } from './ingress.js';
import { ingressDomainInternal } from './ingress-service.js';

export interface NetworkConfig {
  kubeconfig: string;
  logLevel: LogLevel;
  services?: { nodeAddress?: string };
  dns?: { address: string; port: number; domain: string };
  ingress?: { listen: ListenAddress; publicListen?: ListenAddress; ingressClass: string; domainInternal: string };
}

export const usage = `usage: main.ts --kubeconfig FILE [--services [--node-address IP]] [--dns IP:PORT [--cluster-domain cluster.local]]
               [--ingress IP:PORT [--ingress-public IP:PORT] [--ingress-class CLASS] [--ingress-domain NAME]] [--log-level info]`;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function parseNetworkArgs(argv: string[]): NetworkConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        kubeconfig: { type: 'string' },
        services: { type: 'boolean' },
        'node-address': { type: 'string' },
        dns: { type: 'string' },
        'cluster-domain': { type: 'string', default: 'cluster.local' },
        ingress: { type: 'string' },
        'ingress-public': { type: 'string' },
        'ingress-class': { type: 'string', default: defaultIngressClass },
        'ingress-domain': { type: 'string', default: ingressDomainInternal() },
        'log-level': { type: 'string', default: 'info' },
      },
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${usage}`);
  }
  const problems: string[] = [];
  const address = (flag: string, text: string | undefined): ListenAddress | undefined => {
    if (text === undefined) return undefined;
    const colon = text.lastIndexOf(':');
    const host = text.slice(0, colon);
    const port = Number(text.slice(colon + 1));
    if (colon < 0 || !net.isIP(host) || !Number.isInteger(port) || port < 0 || port > 65_535) {
      problems.push(`--${flag} ${JSON.stringify(text)} is not IP:PORT (e.g. 10.96.0.10:53)`);
      return undefined;
    }
    return { host, port };
  };
  if (!values.kubeconfig) problems.push('--kubeconfig is required');
  const nodeAddress = values['node-address'];
  if (nodeAddress !== undefined && !net.isIP(nodeAddress)) problems.push(`--node-address ${JSON.stringify(nodeAddress)} is not an IP address`);
  if (nodeAddress !== undefined && !values.services) problems.push('--node-address is only used with --services');
  const dns = address('dns', values.dns);
  const ingress = address('ingress', values.ingress);
  const ingressPublic = address('ingress-public', values['ingress-public']);
  if (ingressPublic && !values.ingress) problems.push('--ingress-public needs --ingress (the in-cluster listener)');
  const logLevel = values['log-level'] as LogLevel;
  if (!logLevels.includes(logLevel)) problems.push(`--log-level must be one of ${logLevels.join(', ')}`);
  if (!values.services && !values.dns && !values.ingress) problems.push('nothing to run: give --services, --dns or --ingress');
  if (problems.length > 0) throw new ConfigError(`${problems.join('\n')}\n${usage}`);
  return {
    kubeconfig: values.kubeconfig!,
    logLevel,
    ...(values.services ? { services: nodeAddress ? { nodeAddress } : {} } : {}),
    ...(dns ? { dns: { address: dns.host, port: dns.port, domain: values['cluster-domain'] } } : {}),
    ...(ingress
      ? {
          ingress: {
            listen: ingress,
            ...(ingressPublic ? { publicListen: ingressPublic } : {}),
            ingressClass: values['ingress-class'],
            domainInternal: values['ingress-domain'],
          },
        }
      : {}),
  };
}
