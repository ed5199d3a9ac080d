// The command line, the Knative release users are told to install, and the error texts: pure parts
// of the CLI, called directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefaults, parseCommandLine } from '../cli.js';
import { CliError, describeRequestError, exitCodes, formatError, knativeMissing, objectsMissing } from '../errors.js';
import { installCommands, releaseTag } from '../knative.js';
import { versions } from '../../tools/versions.js';

function usage(argv: string[]): CliError {
  try {
    parseCommandLine(argv);
  } catch (err) {
    assert.ok(err instanceof CliError, `not a CliError: ${String(err)}`);
    assert.equal(err.exitCode, exitCodes.usage);
    return err;
  }
  assert.fail(`${argv.join(' ')} was accepted`);
}

test('status takes kubectl-style flags, with promsnap and monitoring as default namespaces', () => {
  assert.deepEqual(parseCommandLine(['status']), {
    name: 'status',
    context: undefined,
    namespaces: { pipeline: 'promsnap', monitoring: 'monitoring' },
    output: 'table',
  });
  assert.deepEqual(parseCommandLine(['status', '--context', 'kind-dev', '-n', 'team-a', '--monitoring-namespace=obs', '-o', 'json']), {
    name: 'status',
    context: 'kind-dev',
    namespaces: { pipeline: 'team-a', monitoring: 'obs' },
    output: 'json',
  });
});

test('load defaults to 30 s and 50 workers, as in Knative autoscaling sample, on /simulate-requests', () => {
  const command = parseCommandLine(['load']);
  assert.equal(command.name, 'load');
  assert.deepEqual(command.name === 'load' && [command.duration, command.concurrency, command.path], ['30s', 50, '/simulate-requests']);
  assert.deepEqual(loadDefaults, { duration: '30s', concurrency: 50, path: '/simulate-requests' });
  const custom = parseCommandLine(['load', '--duration', '1m30s', '--concurrency', '5', '--path', '/']);
  assert.deepEqual(custom.name === 'load' && [custom.duration, custom.concurrency, custom.path], ['1m30s', 5, '/']);
});

test('load --via takes an ingress address (scheme, host, port) and keeps it as its origin', () => {
  const via = (argv: string[]) => {
    const command = parseCommandLine(argv);
    return command.name === 'load' ? command.via : 'not load';
  };
  assert.equal(via(['load']), undefined);
  assert.equal(via(['load', '--via', 'http://127.0.0.1:8080']), 'http://127.0.0.1:8080');
  assert.equal(via(['load', '--via=http://localhost:8080/']), 'http://localhost:8080');
  assert.equal(via(['load', '--via', 'https://203.0.113.7']), 'https://203.0.113.7');
  assert.match(usage(['load', '--via', '127.0.0.1:8080']).message, /--via "127.0.0.1:8080" is not a URL/);
  assert.match(usage(['load', '--via', 'localhost:8080']).message, /--via "localhost:8080" must be an http:\/\/ or https:\/\/ URL/);
  assert.match(usage(['load', '--via', 'http://127.0.0.1:8080/simulate-requests']).message, /only scheme, host and port .* --path's/);
  assert.match(usage(['status', '--via', 'http://127.0.0.1:8080']).message, /--via is a flag of load/);
});

test('bad command lines are usage errors (exit 2) that name the problem', () => {
  assert.match(usage([]).message, /no command given/);
  assert.match(usage(['describe']).message, /unknown command "describe"/);
  assert.match(usage(['status', 'extra']).message, /unexpected argument after status: extra/);
  assert.match(usage(['status', '--frob']).message, /--frob/);
  assert.match(usage(['status', '-o', 'yaml']).message, /--output must be table or json/);
  assert.match(usage(['status', '-n', 'Not_A_Namespace']).message, /--namespace "Not_A_Namespace"/);
  assert.match(usage(['status', '--duration', '3s']).message, /--duration is a flag of load/);
  assert.match(usage(['load', '--duration', '30']).message, /--duration "30" is not a duration/);
  assert.match(usage(['load', '-c', '0']).message, /--concurrency "0"/);
  assert.match(usage(['load', '-c', '2.5']).message, /--concurrency "2.5"/);
  assert.match(usage(['load', '--path', 'simulate']).message, /--path "simulate" must start with \//);
  assert.deepEqual(parseCommandLine(['--help']), { name: 'help' });
  assert.deepEqual(parseCommandLine(['status', '-h']), { name: 'help' });
});

test('Knative module versions map to their GitHub release tags (module v0.27 was Knative 1.0)', () => {
  assert.equal(releaseTag('0.27.0'), 'knative-v1.0.0');
  assert.equal(releaseTag('0.37.0'), 'knative-v1.10.0');
  assert.equal(releaseTag('v0.51.0'), 'knative-v1.24.0');
  assert.equal(releaseTag('0.50.2'), 'knative-v1.23.2');
  assert.throws(() => releaseTag('0.26.0'), /not a Knative 1.x module version/);
  assert.throws(() => releaseTag('1.2.3'), /not a Knative 1.x module version/);
});

test('the install commands are those of the pinned Serving and Eventing releases, CRDs first', () => {
  const serving = `https://github.com/knative/serving/releases/download/${releaseTag(versions.knativeServing)}`;
  const eventing = `https://github.com/knative/eventing/releases/download/${releaseTag(versions.knativeEventing)}`;
  assert.deepEqual(installCommands('serving'), [`kubectl apply -f ${serving}/serving-crds.yaml`, `kubectl apply -f ${serving}/serving-core.yaml`]);
  assert.deepEqual(installCommands('eventing'), [
    `kubectl apply -f ${eventing}/eventing-crds.yaml`,
    `kubectl apply -f ${eventing}/eventing-core.yaml`,
    `kubectl apply -f ${eventing}/in-memory-channel.yaml`,
    `kubectl apply -f ${eventing}/mt-channel-broker.yaml`,
  ]);
});

test('a missing Knative prints what is missing and the commands, exit 4', () => {
  const err = knativeMissing(['eventing']);
  assert.equal(err.exitCode, exitCodes.knativeMissing);
  const text = formatError(err);
  assert.match(
    text,
    new RegExp(
      `^error: Knative Eventing ${releaseTag(versions.knativeEventing)} \\(knative.dev/eventing v${versions.knativeEventing.replaceAll('.', '\\.')}\\) is not installed`,
    ),
  );
  assert.doesNotMatch(text, /serving-core/);
  assert.equal(text.split('\n').filter((line) => line.startsWith('  kubectl apply -f ')).length, 4);
});

test('missing pipeline objects are listed by namespace, exit 5', () => {
  const err = objectsMissing([
    { resource: 'deployment', namespace: 'monitoring', name: 'prometheus' },
    { resource: 'ksvc', namespace: 'promsnap', name: 'simulation' },
    { resource: 'trigger', namespace: 'promsnap', name: 'snapshot' },
  ]);
  assert.equal(err.exitCode, exitCodes.objectsMissing);
  assert.equal(err.lines.length, 2);
  assert.match(
    err.lines[0]!,
    /^3 pipeline objects are missing: deployment\/prometheus in namespace monitoring; ksvc\/simulation, trigger\/snapshot in namespace promsnap\.$/,
  );
});

test('API failures become one-line errors: 401, 403 with the server message, connection refused', () => {
  const request = { server: 'https://10.0.0.1:6443', context: 'prod', what: 'get ksvc/simulation in namespace promsnap' };
  const unauthorized = describeRequestError(Object.assign(new Error('HTTP-Code: 401'), { code: 401 }), request) as CliError;
  assert.equal(unauthorized.exitCode, exitCodes.cluster);
  assert.match(unauthorized.lines[0]!, /refused the credentials of context "prod"/);
  const forbidden = describeRequestError(
    Object.assign(new Error('HTTP-Code: 403'), {
      code: 403,
      body: JSON.stringify({ kind: 'Status', message: 'services.serving.knative.dev "simulation" is forbidden' }),
    }),
    request,
  ) as CliError;
  assert.match(
    forbidden.lines[0]!,
    /^context "prod" may not get ksvc\/simulation in namespace promsnap: services.serving.knative.dev "simulation" is forbidden$/,
  );
  const refused = describeRequestError(
    new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), { code: 'ECONNREFUSED' }) }),
    request,
  ) as CliError;
  assert.equal(refused.exitCode, exitCodes.cluster);
  assert.match(
    refused.lines[0]!,
    /^cannot reach the Kubernetes API server https:\/\/10\.0\.0\.1:6443 \(context "prod"\): connect ECONNREFUSED 10\.0\.0\.1:6443\.$/,
  );
  const other = new RangeError('something else');
  assert.equal(describeRequestError(other, request), other);
});
