// Structured JSON logs, one object per line on stdout, as cluster log collectors expect.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const severity: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Every level, least severe first: what a function's LOG_LEVEL may name. */
export const logLevels = Object.keys(severity) as readonly LogLevel[];

export interface LoggerOptions {
  level?: LogLevel;
  fields?: LogFields;
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const minimum = severity[options.level ?? 'info'];
  const base = options.fields ?? {};
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (severity[level] < minimum) return;
    const record: LogFields = { time: new Date().toISOString(), level, msg, ...base, ...fields };
    if (record['err'] instanceof Error) record['err'] = serializeError(record['err']);
    write(JSON.stringify(record));
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

function serializeError(err: Error): LogFields {
  const out: LogFields = { name: err.name, message: err.message, stack: err.stack };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (err.cause instanceof Error) out['cause'] = serializeError(err.cause);
  return out;
}
