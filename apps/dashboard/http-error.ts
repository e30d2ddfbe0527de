/**
 * A request the dashboard refuses, or a change it could not make, answered with an HTTP
 * error status and `{ ok: false, error: message }`.
 */
import { ErrorCode, FlagshiftError } from '../../src/index.js';

/** Options of {@link HttpError}. */
export interface HttpErrorOptions {
  /**
   * What kind of failure it is.
   * @default 'validation' (the request itself is what is wrong)
   */
  readonly code?: ErrorCode;
  readonly cause?: unknown;
  /** Headers the answer carries, e.g. `allow` on a 405. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** An error the dashboard answers with `status` and its message. */
export class HttpError extends FlagshiftError {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** Headers the answer carries besides the usual ones. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(options.code ?? ErrorCode.Validation, message, { cause: options.cause });
    this.status = status;
    this.headers = options.headers ?? {};
  }
}
