// The command line of `npm run cluster -- <command>`, parsed and checked before anything touches the
// cluster, in kubectl's shape: a subcommand, then --context, --namespace/-n, --output/-o.
import { parseArgs } from 'node:util';
import { isHeyDuration } from '../tools/hey.js';
import { usageError } from './errors.js';
import { defaultNamespaces, type Namespaces } from './pipeline.js';

export type OutputFormat = 'table' | 'json';

interface Common {
  context: string | undefined;
  namespaces: Namespaces;
  output: OutputFormat;
}

export type Command =
  | { name: 'help' }
  | ({ name: 'status' } & Common)
  | ({
      name: 'load';
      duration: string;
      concurrency: number;
      path: string;
      /**
       * An ingress address (a port-forward to Kourier, say) to send the requests to instead of the
       * ksvc's URL, with the ksvc URL's host as their Host header; undefined to use the URL itself.
       */
      via: string | undefined;
    } & Common);

export const loadDefaults = {
  // Knative's autoscaling sample drives its service with `hey -z 30s -c 50`.
  duration: '30s',
  concurrency: 50,
  // The route with simulated work time, so requests overlap and the autoscaler sees concurrency.
  path: '/simulate-requests',
} as const;

export const helpText = `Check promsnap on your Kubernetes cluster (the kubeconfig's current context unless --context).

Usage:
  npm run cluster -- status [flags]   one table of the pipeline's health; exit 0 only when all is ready
  npm run cluster -- load [flags]     hey against the simulation's Knative URL, watching its pods scale

Flags:
      --context NAME                kubeconfig context to use (default: the current context)
  -n, --namespace NAME              namespace of MinIO, the Knative Services and eventing (default: ${defaultNamespaces.pipeline})
      --monitoring-namespace NAME   namespace of Prometheus and kube-state-metrics (default: ${defaultNamespaces.monitoring})
  -o, --output table|json           output format (default: table)
  -h, --help                        this help

Flags of load:
  -z, --duration DURATION           how long hey sends requests, e.g. 30s, 2m (default: ${loadDefaults.duration})
  -c, --concurrency N               concurrent hey workers (default: ${loadDefaults.concurrency})
      --path PATH                   path requested on the service's URL (default: ${loadDefaults.path})
      --via URL                     send the requests to this ingress address (e.g. a port-forward to
                                    Kourier, http://127.0.0.1:8080) with the service URL's Host header

Exit codes:
  0 ready (status) / load ran        1 not ready, or load could not run
  2 bad command line                 3 no kubeconfig, API server unreachable, or credentials refused
  4 Knative not installed            5 pipeline objects missing
`;

/** Kubernetes object and namespace names: lower-case DNS labels. */
const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function parseCommandLine(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        context: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        'monitoring-namespace': { type: 'string' },
        output: { type: 'string', short: 'o' },
        duration: { type: 'string', short: 'z' },
        concurrency: { type: 'string', short: 'c' },
        path: { type: 'string' },
        via: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // parseArgs's messages already name the flag ("Unknown option '--foo'").
    throw usageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help') return { name: 'help' };
  const [command, ...extra] = positionals;
  if (command === undefined) throw usageError('no command given: use `status` or `load`.');
  if (command !== 'status' && command !== 'load') throw usageError(`unknown command "${command}": use \`status\` or \`load\`.`);
  if (extra.length > 0) throw usageError(`unexpected argument${extra.length > 1 ? 's' : ''} after ${command}: ${extra.join(' ')}`);

  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usageError(`--output must be table or json, not "${output}".`);
  const namespaces: Namespaces = {
    pipeline: values.namespace ?? defaultNamespaces.pipeline,
    monitoring: values['monitoring-namespace'] ?? defaultNamespaces.monitoring,
  };
  for (const [flag, value] of [
    ['--namespace', namespaces.pipeline],
    ['--monitoring-namespace', namespaces.monitoring],
  ] as const) {
    if (!dnsLabel.test(value)) throw usageError(`${flag} "${value}" is not a valid namespace name.`);
  }
  if (values.context === '') throw usageError('--context needs a context name.');
  const common: Common = { context: values.context, namespaces, output };

  if (command === 'status') {
    const loadOnly = (['duration', 'concurrency', 'path', 'via'] as const).filter((flag) => values[flag] !== undefined);
    if (loadOnly.length > 0) throw usageError(`--${loadOnly[0]} is a flag of load, not of status.`);
    return { name: 'status', ...common };
  }

  const duration = values.duration ?? loadDefaults.duration;
  if (!isHeyDuration(duration)) throw usageError(`--duration "${duration}" is not a duration like 30s, 2m or 1m30s.`);
  const concurrencyText = values.concurrency ?? String(loadDefaults.concurrency);
  const concurrency = Number(concurrencyText);
  if (!/^\d+$/.test(concurrencyText) || concurrency < 1 || concurrency > 10_000) {
    throw usageError(`--concurrency "${concurrencyText}" must be a whole number from 1 to 10000.`);
  }
  const path = values.path ?? loadDefaults.path;
  if (!path.startsWith('/')) throw usageError(`--path "${path}" must start with /.`);
  return { name: 'load', ...common, duration, concurrency, path, via: values.via === undefined ? undefined : viaAddress(values.via) };
}

/**
 * --via as the origin requests go to: http(s), and nothing after host and port, since the path is
 * --path's and an ingress routes by Host, not by a prefix.
 */
function viaAddress(text: string): string {
  const example = 'an address like http://127.0.0.1:8080';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--via "${text}" is not a URL: give ${example}.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--via "${text}" must be an http:// or https:// URL, ${example}.`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw usageError(`--via "${text}" must be only scheme, host and port (${example}); the path requested is --path's.`);
  }
  return url.origin;
}
