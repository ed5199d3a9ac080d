// Knative's runtime contract as both functions keep it, in one place: the settings every function reads
// (PORT, LOG_LEVEL, SHUTDOWN_GRACE_MS, and K_SERVICE/K_REVISION, which Knative sets), the logger that
// carries Knative's names on every line, the start-up error path (a bad variable stops the start with
// exit code 1 and one line per problem), and serving until SIGTERM with the function's own drain.
import type { RequestListener } from 'node:http';
import { ConfigError, EnvReader } from './env.js';
import { serve, type Lifecycle } from './lifecycle.js';
import { createLogger, logLevels, type LogFields, type Logger, type LogLevel } from './logger.js';

export interface RuntimeSettings {
  port: number;
  logLevel: LogLevel;
  shutdownGraceMs: number;
  /** Knative's Service and Revision names, carried on every log line when set. */
  service: string | undefined;
  revision: string | undefined;
}

export interface RuntimeDefaults {
  /** Longest drain after SIGTERM when SHUTDOWN_GRACE_MS is unset, and the most it may be set to. */
  shutdownGraceMs: number;
  maxShutdownGraceMs: number;
}

/** The port Knative's queue-proxy sends requests to when it does not set PORT. */
export const defaultPort = 8080;

/**
 * Reads a function's configuration: PORT, then the function's own variables, then LOG_LEVEL and
 * SHUTDOWN_GRACE_MS, then its cross-field checks; every problem is collected and thrown at once as a
 * ConfigError naming each variable.
 */
export function readConfig<T extends object>(
  env: Record<string, string | undefined>,
  defaults: RuntimeDefaults,
  readOwn: (read: EnvReader) => T,
  check?: (config: T & RuntimeSettings, read: EnvReader) => void,
): T & RuntimeSettings {
  const read = new EnvReader(env);
  const port = read.integer('PORT', defaultPort, { min: 1, max: 65_535 });
  const own = readOwn(read);
  const config: T & RuntimeSettings = {
    ...own,
    port,
    logLevel: read.oneOf('LOG_LEVEL', logLevels, 'info'),
    shutdownGraceMs: read.integer('SHUTDOWN_GRACE_MS', defaults.shutdownGraceMs, { min: 0, max: defaults.maxShutdownGraceMs }),
    service: read.string('K_SERVICE'),
    revision: read.string('K_REVISION'),
  };
  check?.(config, read);
  return read.done(config);
}

/** JSON lines naming the function, and Knative's Service and Revision when it runs under Knative. */
export function functionLogger(name: string, settings: Pick<RuntimeSettings, 'logLevel' | 'service' | 'revision'>, write?: (line: string) => void): Logger {
  return createLogger({
    level: settings.logLevel,
    fields: {
      service: name,
      ...(settings.service ? { kService: settings.service } : {}),
      ...(settings.revision ? { kRevision: settings.revision } : {}),
    },
    ...(write ? { write } : {}),
  });
}

export interface FunctionParts {
  handler: RequestListener;
  /** Work to finish after the server stops accepting (an in-flight snapshot). */
  drain?: () => Promise<void>;
  /** Logged with the ready line: the settings worth seeing at start. */
  readyFields?: LogFields;
}

export interface FunctionSpec<C extends RuntimeSettings> {
  name: string;
  loadConfig: () => C;
  /** Builds the function from its configuration; `ready` is false once shutdown has begun. */
  start(context: { config: C; log: Logger; ready: () => boolean }): FunctionParts;
}

/**
 * Starts a function as server.ts does: a bad configuration is reported on stderr (one line per
 * problem) and exits 1; otherwise it serves until SIGTERM, drains, and exits 0.
 */
export async function runFunction<C extends RuntimeSettings>(spec: FunctionSpec<C>): Promise<Lifecycle> {
  let config: C;
  try {
    config = spec.loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${spec.name}: ${err.message}\n`);
    process.exit(1);
  }
  const log = functionLogger(spec.name, config);
  let lifecycle: Lifecycle | undefined;
  const parts = spec.start({ config, log, ready: () => lifecycle?.accepting ?? false });
  lifecycle = await serve(parts.handler, {
    port: config.port,
    log,
    shutdownGraceMs: config.shutdownGraceMs,
    ...(parts.drain ? { drain: parts.drain } : {}),
  });
  log.info(`${spec.name} ready`, { ...parts.readyFields, shutdownGraceMs: config.shutdownGraceMs });
  return lifecycle;
}
