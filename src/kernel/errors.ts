/**
 * Stable error codes. Match on `error.code`, never on the message. Every machine-readable
 * code flagshift emits (error codes, metric event types, lifecycle event types, pre-flight
 * warnings, guardrail reasons) is written the same way: lowercase words joined by `-`.
 */
export const ErrorCode = {
  Configuration: 'configuration',
  Validation: 'validation',
  UnknownColumn: 'unknown-column',
  Driver: 'driver',
  StageTransition: 'stage-transition',
  Consistency: 'consistency',
  FlagEvaluation: 'flag-evaluation',
  /** The `flagshift` command line was given input it can't act on: a command, option, migration or module. */
  Usage: 'usage',
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error flagshift raises on purpose. */
export class FlagshiftError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A migration, table or option definition is invalid. Raised when it is defined. */
export class ConfigurationError extends FlagshiftError {
  /** Where in the definition the problem is, e.g. `fields.username.old.columns[0]`. */
  readonly path: string;
  constructor(message: string, options?: { cause?: unknown; path?: string; code?: ErrorCode }) {
    super(options?.code ?? ErrorCode.Configuration, message, options);
    this.path = options?.path ?? '';
  }
}

/** A value the application passed (an entity, a filter, a key) is invalid. Nothing was written. */
export class ValidationError extends FlagshiftError {
  /** Logical field paths that failed, e.g. `["username"]`. */
  readonly fields: readonly string[];
  constructor(message: string, options?: { cause?: unknown; fields?: readonly string[] }) {
    super(ErrorCode.Validation, message, options);
    this.fields = options?.fields ?? [];
  }
}

/** The database rejected a statement. Keeps PostgreSQL's SQLSTATE in `sqlState`. */
export class DriverError extends FlagshiftError {
  /** PostgreSQL's SQLSTATE, e.g. `23505` for a unique violation, when the server sent one. */
  readonly sqlState: string | undefined;
  constructor(message: string, options?: { cause?: unknown; sqlState?: string | undefined }) {
    super(ErrorCode.Driver, message, options);
    this.sqlState = options?.sqlState;
  }
}

/** A requested stage change is not allowed (for example contract before verification). */
export class StageTransitionError extends FlagshiftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.StageTransition, message, options);
  }
}

/** Old and new data disagree where they must not (verification failures). */
export class ConsistencyError extends FlagshiftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Consistency, message, options);
  }
}

/**
 * A flag system answered a flag evaluation with an error. The stage resolver catches it and
 * falls back (never the data path's concern); `reason` says how the fallback is counted.
 */
export class FlagEvaluationError extends FlagshiftError {
  /** `type` for an answer of the wrong type, `error` for any other failure. */
  readonly reason: 'type' | 'error';
  constructor(message: string, options?: { cause?: unknown; reason?: 'type' | 'error' }) {
    super(ErrorCode.FlagEvaluation, message, options);
    this.reason = options?.reason ?? 'error';
  }
}

/** Wraps an error thrown by a driver, keeping its SQLSTATE and message. */
export function toDriverError(error: unknown, sql?: string): DriverError {
  if (error instanceof DriverError) return error;
  const e = error as { code?: unknown; message?: unknown } | null;
  const sqlState = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const where = sql === undefined ? '' : ` (statement: ${sql.length > 200 ? `${sql.slice(0, 200)}...` : sql})`;
  return new DriverError(`database error${sqlState ? ` ${sqlState}` : ''}: ${message}${where}`, {
    cause: error,
    sqlState,
  });
}
