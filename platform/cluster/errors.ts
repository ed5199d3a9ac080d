// Everything that can stop `npm run cluster`, as one or two lines saying what is wrong and what to do
// next, and an exit code a script can branch on. No stack traces: a user with a broken kubeconfig needs
// the next step, not our call stack.
import { installCommands, releaseName, type KnativePart } from './knative.js';
import { refName, type ObjectRef } from './pipeline.js';

/** Exit codes of both commands (the README lists them). */
export const exitCodes = {
  /** Everything asked about is ready; load ran. */
  ok: 0,
  /** The pipeline is deployed but something is not ready (or load could not run against it). */
  notReady: 1,
  /** Bad command line. */
  usage: 2,
  /** No usable kubeconfig, the API server is unreachable, or it refused our credentials. */
  cluster: 3,
  /** Knative Serving or Eventing is not installed on the cluster. */
  knativeMissing: 4,
  /** Knative is there, but pipeline objects are not: platform/ was not deployed (to this namespace). */
  objectsMissing: 5,
} as const;

export class CliError extends Error {
  constructor(
    /** What went wrong, then what to do; printed one per line after `error: `. */
    readonly lines: readonly string[],
    readonly exitCode: number,
  ) {
    super(lines.join('\n'));
    this.name = 'CliError';
  }
}

export function usageError(problem: string): CliError {
  return new CliError([problem, 'Run `npm run cluster -- --help` for the commands and flags.'], exitCodes.usage);
}

export function noKubeconfig(searched: readonly string[]): CliError {
  return new CliError(
    [
      `no kubeconfig found (looked for ${searched.join(', ')}).`,
      'Point KUBECONFIG at your cluster\'s kubeconfig, or create ~/.kube/config (for example with your provider\'s "get-credentials" command).',
    ],
    exitCodes.cluster,
  );
}

export function unreadableKubeconfig(file: string, reason: string): CliError {
  return new CliError([`cannot read kubeconfig ${file}: ${reason}`, 'Fix the file, or point KUBECONFIG at another one.'], exitCodes.cluster);
}

export function noContext(requested: string | undefined, available: readonly string[]): CliError {
  const known = available.length > 0 ? available.join(', ') : 'none';
  return new CliError(
    requested
      ? [`context "${requested}" is not in the kubeconfig (contexts: ${known}).`, 'Pass one of them with --context.']
      : [`the kubeconfig has no current context (contexts: ${known}).`, 'Pass --context NAME, or run `kubectl config use-context NAME`.'],
    exitCodes.cluster,
  );
}

export function unreachable(server: string, context: string, reason: string): CliError {
  return new CliError(
    [
      `cannot reach the Kubernetes API server ${server} (context "${context}"): ${reason}.`,
      `Check that the cluster is running and that \`kubectl --context ${context} cluster-info\` works.`,
    ],
    exitCodes.cluster,
  );
}

export function unauthorized(server: string, context: string): CliError {
  return new CliError(
    [
      `the API server ${server} refused the credentials of context "${context}" (401 Unauthorized).`,
      "Renew them (log in again with your provider's tool) and retry.",
    ],
    exitCodes.cluster,
  );
}

export function forbidden(what: string, context: string, detail: string): CliError {
  return new CliError([`context "${context}" may not ${what}: ${detail}`, "Use a context whose user can read the pipeline's namespaces."], exitCodes.cluster);
}

/** Knative parts missing from API discovery, with the commands that install the pinned release. */
export function knativeMissing(parts: readonly KnativePart[]): CliError {
  const names = parts.map((part) => `Knative ${part === 'serving' ? 'Serving' : 'Eventing'} ${releaseName(part)}`);
  return new CliError(
    [
      `${names.join(' and ')} ${parts.length > 1 ? 'are' : 'is'} not installed on this cluster (its CRDs are missing). Install ${parts.length > 1 ? 'them' : 'it'} with:`,
      ...parts.flatMap((part) => installCommands(part).map((command) => `  ${command}`)),
    ],
    exitCodes.knativeMissing,
  );
}

export function objectsMissing(missing: readonly ObjectRef[]): CliError {
  const byNamespace = new Map<string, string[]>();
  for (const ref of missing) byNamespace.set(ref.namespace, [...(byNamespace.get(ref.namespace) ?? []), refName(ref)]);
  const list = [...byNamespace].map(([namespace, names]) => `${names.join(', ')} in namespace ${namespace}`).join('; ');
  return new CliError(
    [
      `${missing.length} pipeline object${missing.length === 1 ? ' is' : 's are'} missing: ${list}.`,
      'Deploy the pipeline with `skaffold run` (or `kubectl apply -k platform`), or pass --namespace/--monitoring-namespace where you deployed it.',
    ],
    exitCodes.objectsMissing,
  );
}

/** The first code found along an error's cause chain (undici puts ECONNREFUSED on the cause). */
function errorCode(err: unknown): string | undefined {
  for (let current = err, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function deepestMessage(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  for (let current = (err as { cause?: unknown })?.cause, depth = 0; current && depth < 5; depth++) {
    if (current instanceof Error && current.message) message = current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return message;
}

/** HTTP status of a client-node ApiException, or of a Watch's failed request. */
export function httpStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  if (typeof statusCode === 'number') return statusCode;
  return undefined;
}

/** The Status message the API server sent with an error response, when there is one. */
function serverMessage(err: unknown): string | undefined {
  const body = (err as { body?: unknown }).body;
  const parsed = typeof body === 'string' ? safeJson(body) : body;
  const message = (parsed as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface RequestContext {
  server: string;
  context: string;
  /** What the request was for, as in "get deployment/prometheus in namespace monitoring". */
  what: string;
}

/** Turns a failed API request into the CliError a user can act on; other errors are returned as is. */
export function describeRequestError(err: unknown, request: RequestContext): unknown {
  if (err instanceof CliError) return err;
  const status = httpStatus(err);
  if (status === 401) return unauthorized(request.server, request.context);
  if (status === 403) return forbidden(request.what, request.context, serverMessage(err) ?? 'forbidden');
  if (status !== undefined) {
    return new CliError([`the API server answered ${status} to "${request.what}": ${serverMessage(err) ?? 'no message'}`], exitCodes.cluster);
  }
  const code = errorCode(err);
  if (code !== undefined || (err instanceof TypeError && /fetch failed/.test(err.message))) {
    return unreachable(request.server, request.context, code && !deepestMessage(err).includes(code) ? `${code} ${deepestMessage(err)}` : deepestMessage(err));
  }
  return err;
}

/** The text printed for an error: `error: ` and the first line, the rest indented beneath. */
export function formatError(err: CliError): string {
  const [first, ...rest] = err.lines;
  return [`error: ${first}`, ...rest.map((line) => (line.startsWith('  ') ? line : `  ${line}`))].join('\n') + '\n';
}

/** An error nobody foresaw: still one line, with where to look, never a stack unless asked for. */
export function unexpected(err: unknown): CliError {
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new CliError([`${message}`, 'Set PROMSNAP_DEBUG=1 to see the stack trace.'], exitCodes.notReady);
}
