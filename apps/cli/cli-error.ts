/**
 * How the CLI fails: one line on stderr, `flagshift: error: <message>`, and an exit code.
 * A {@link CliError} may add indented detail lines the operator needs to fix the input;
 * stack traces and causes only with `--verbose`.
 */
import { ErrorCode, FlagshiftError } from '../../src/index.js';

/**
 * Exit codes: 0 success, 1 a failed operation (a verification mismatch included), 2 bad
 * input, 130 interrupted, 141 the output's reader went away (as SIGPIPE ends other tools).
 */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  Interrupted: 130,
  BrokenPipe: 141,
} as const;

/** Options of {@link CliError}. */
export interface CliErrorOptions {
  /**
   * What kind of failure it is.
   * @default 'usage' (the operator's input is what is wrong)
   */
  readonly code?: ErrorCode;
  /**
   * The process's exit code.
   * @default 2 ({@link ExitCode.Usage})
   */
  readonly exitCode?: number;
  readonly cause?: unknown;
  /**
   * Lines printed, indented, under the error line even without `--verbose`.
   * @default []
   */
  readonly details?: readonly string[];
}

/** A failure the CLI explains itself: bad input, a missing module, an unknown migration. */
export class CliError extends FlagshiftError {
  readonly exitCode: number;
  /**
   * Lines printed, indented, under the error line even without `--verbose`: what the
   * operator needs to fix the input, such as the file:line:col of a syntax error.
   */
  readonly details: readonly string[];

  constructor(message: string, options: CliErrorOptions = {}) {
    super(options.code ?? ErrorCode.Usage, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? ExitCode.Usage;
    this.details = options.details ?? [];
  }
}

/** The one line an error is reported as: its message's first line, with PostgreSQL's SQLSTATE when it has one. */
export function errorLine(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown; sqlState?: unknown } | null;
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(error);
  const first = message.split('\n')[0]!.trim();
  const sqlState = typeof e?.sqlState === 'string' ? e.sqlState : typeof e?.code === 'string' ? e.code : undefined;
  const isSqlState = sqlState !== undefined && /^[0-9A-Z]{5}$/.test(sqlState);
  return isSqlState && !first.includes(sqlState) ? `${first} (SQLSTATE ${sqlState})` : first;
}

/** The error's stack and its causes, for `--verbose`. */
export function errorDetails(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const e = current as { stack?: unknown; message?: unknown; cause?: unknown };
    parts.push(`${depth === 0 ? '' : 'caused by: '}${typeof e.stack === 'string' ? e.stack : String(current)}`);
    current = e.cause;
  }
  return parts.join('\n');
}

/** Error codes of a driver that could not reach the server at all. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '28P01', // invalid_password
  '28000', // invalid_authorization_specification
  '3D000', // invalid_catalog_name: the database does not exist
  '57P03', // cannot_connect_now
  '08001',
  '08006',
]);

/** Whether `error` says the database could not be reached or refused us. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  return typeof e?.message === 'string' && /timeout expired|Connection terminated|connect E[A-Z]+/.test(e.message);
}
