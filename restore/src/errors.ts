// Everything that can stop `npm run restore`, as one or two lines saying what is wrong and what to do
// next, and an exit code a script can branch on (README lists them).

export const exitCodes = {
  ok: 0,
  /** promtool or Prometheus failed, or anything unexpected. */
  failed: 1,
  /** Bad command line or settings. */
  usage: 2,
  /** The bucket holds no export in the range (or under the prefix) asked for. */
  nothingToRestore: 3,
  /** The bucket does not exist, or the object store cannot be reached. */
  bucket: 4,
  /** The object store refused the credentials (unknown key, wrong secret, access denied). */
  credentials: 5,
  /** An object selected is not a promsnap export (or is one this version cannot read). */
  notAnExport: 6,
  /** The remote-write receiver refused the samples. */
  remoteWrite: 7,
} as const;

export class RestoreError extends Error {
  constructor(
    /** What went wrong, then what to do; printed one per line after `error: `. */
    readonly lines: readonly string[],
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(lines.join('\n'), options);
    this.name = 'RestoreError';
  }
}

export function usageError(problem: string): RestoreError {
  return new RestoreError([problem, 'Run `npm run restore -- --help` for the flags.'], exitCodes.usage);
}

export function formatError(error: RestoreError): string {
  return error.lines.map((line, i) => (i === 0 ? `error: ${line}` : `  ${line}`)).join('\n') + '\n';
}
