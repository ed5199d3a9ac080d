// `npm run load`: `npm run cluster -- load` against the running `npm start`: hey against the simulation's
// Knative Service URL, sent through the local ingress with the URL's host as Host header (--via, as on kind),
// printing the pod count as the autoscaler changes it. Everything but finding the cluster is
// platform/cluster/load.ts, the same code that loads a real cluster.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { helpText, parseCommandLine } from '../cluster/cli.js';
import { CliError, exitCodes, formatError, unexpected } from '../cluster/errors.js';
import { connect } from '../cluster/kube.js';
import { runLoadUntilInterrupted } from '../cluster/load.js';
import { readState } from './start.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);

const usage = `Usage: npm run load -- [-z DURATION] [-c N] [--path PATH] [-o table|json] [--data-dir DIR]

hey against the simulation's Knative Service on the local cluster of the running \`npm start\`, through its
ingress, while its pods are watched: a line each time the pod count changes, then hey's summary.
Defaults: -z 30s -c 50 --path /simulate-requests; --data-dir the one npm start was given (.promsnap).
It is \`npm run cluster -- load --via <the local ingress>\` with KUBECONFIG set to the local cluster's:

${helpText.slice(helpText.indexOf('Flags of load:'))}`;

async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    out(usage);
    return exitCodes.ok;
  }
  let dataDir = path.join(repoRoot, '.promsnap');
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--data-dir') dataDir = path.resolve(argv[++i] ?? '');
    else if (arg.startsWith('--data-dir=')) dataDir = path.resolve(arg.slice('--data-dir='.length));
    else if (arg === '--via' || arg.startsWith('--via=') || arg === '--context' || arg.startsWith('--context=')) {
      throw new CliError(
        [`${arg.split('=')[0]} is set by npm run load (the local cluster's ingress and kubeconfig); use npm run cluster -- load for another cluster.`],
        exitCodes.usage,
      );
    } else rest.push(arg);
  }
  let state;
  try {
    state = await readState(dataDir);
  } catch (error) {
    throw new CliError([(error as Error).message], exitCodes.cluster);
  }
  const command = parseCommandLine(['load', ...rest, '--via', state.urls!.ingress]);
  if (command.name !== 'load') throw new CliError(['expected the load command'], exitCodes.usage);
  return runLoadUntilInterrupted(connect({ env: { KUBECONFIG: state.kubeconfig! } }), command, { out, err });
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const cliError = error instanceof CliError ? error : unexpected(error);
  if (!(error instanceof CliError) && process.env['PROMSNAP_DEBUG']) console.error(error);
  err(formatError(cliError));
  process.exitCode = cliError.exitCode;
}
