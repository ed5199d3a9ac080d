// `npm run cluster -- <command>`: the pipeline on the user's own cluster, through their kubeconfig.
// Wiring only: parse the command line, connect, run the command, print any failure as one or two
// lines (errors.ts) and exit with the code scripts branch on.
import { parseCommandLine, helpText, type Command } from './cli.js';
import { CliError, exitCodes, formatError, objectsMissing, unexpected } from './errors.js';
import { connect, readObjects, requireKnative } from './kube.js';
import { runLoadUntilInterrupted } from './load.js';
import { pipelineObjects } from './pipeline.js';
import { formatStatusJson, formatStatusTable, pipelineStatus } from './status.js';

const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);

async function status(command: Extract<Command, { name: 'status' }>): Promise<number> {
  const cluster = connect({ context: command.context });
  await requireKnative(cluster);
  const result = pipelineStatus(await readObjects(cluster, pipelineObjects(command.namespaces)));
  out(command.output === 'json' ? formatStatusJson(result, cluster.context) : formatStatusTable(result));
  if (result.missing.length > 0) {
    const missing = objectsMissing(result.missing);
    err(formatError(missing));
    return missing.exitCode;
  }
  return result.ready ? exitCodes.ok : exitCodes.notReady;
}

async function load(command: Extract<Command, { name: 'load' }>): Promise<number> {
  return runLoadUntilInterrupted(connect({ context: command.context }), command, { out, err });
}

async function main(argv: readonly string[]): Promise<number> {
  const command = parseCommandLine(argv);
  switch (command.name) {
    case 'help':
      out(helpText);
      return exitCodes.ok;
    case 'status':
      return status(command);
    case 'load':
      return load(command);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const cliError = error instanceof CliError ? error : unexpected(error);
  if (!(error instanceof CliError) && process.env['PROMSNAP_DEBUG']) console.error(error);
  err(formatError(cliError));
  process.exitCode = cliError.exitCode;
}
