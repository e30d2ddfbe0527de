/**
 * The names under which the pg driver prepares statements: one per statement text, the
 * same on every connection, renamed when a statement's result type changed under it.
 */
import { createHash } from 'node:crypto';

/** How many statement texts a driver prepares at most; the rest run unnamed. */
export const MAX_PREPARED = 256;

/** The name a statement text is prepared under: the same on every connection. */
function statementName(sql: string): string {
  return `flagshift_${createHash('sha1').update(sql).digest('hex').slice(0, 32)}`;
}

/** How many times one statement text is prepared again before it is sent unnamed for good. */
const MAX_RENAMES = 8;

/** How one statement text is sent: its name (`undefined`: unnamed), and how often it was renamed. */
interface NamedStatement {
  readonly base: string;
  name: string | undefined;
  renames: number;
}

/**
 * The names under which a driver prepares its statements, by text: a hash of the text,
 * with a suffix once a statement had to be prepared again.
 */
export class PreparedStatements {
  readonly #statements = new Map<string, NamedStatement>();
  #enabled: boolean;
  /**
   * Whether named statements are sent by `sendNamed`, without `pg`'s promise: two promises
   * and their microtasks fewer on every read and write. Only node-postgres itself is known
   * to take the callback; a look-alike gets the promise form.
   */
  readonly callbacks: boolean;
  /**
   * Whether `sendNamed` writes a named statement's protocol messages itself, as a query
   * submitted to node-postgres's JavaScript client (see `NamedSend`).
   */
  readonly messages: boolean;

  constructor(enabled: boolean, callbacks: boolean, messages = false) {
    this.#enabled = enabled;
    this.callbacks = callbacks;
    this.messages = callbacks && messages;
  }

  /** The name to prepare `sql` under, or `undefined` to send it unnamed. */
  nameOf(sql: string): string | undefined {
    if (!this.#enabled) return undefined;
    const known = this.#statements.get(sql);
    if (known !== undefined) return known.name;
    if (this.#statements.size >= MAX_PREPARED) return undefined;
    const base = statementName(sql);
    this.#statements.set(sql, { base, name: base, renames: 0 });
    return base;
  }

  /**
   * After the named statement `name` of `sql` failed with `error`: whether the failure came
   * from its preparation (raised before the statement ran), so that sending it again
   * unnamed is safe.
   */
  failed(sql: string, name: string, error: unknown): boolean {
    const { code, routine } = (error ?? {}) as { code?: unknown; routine?: unknown };
    if (code === '0A000' && routine === 'RevalidateCachedQuery') {
      // "cached plan must not change result type": the prepared statement fails the same
      // way on every use, on this connection. A new name prepares it afresh; each leaves
      // the old one on the server, so a statement that keeps failing so goes unnamed.
      const statement = this.#statements.get(sql);
      if (statement !== undefined && statement.name === name) {
        statement.renames++;
        statement.name = statement.renames > MAX_RENAMES ? undefined : `${statement.base}_${statement.renames}`;
      }
      return true;
    }
    if (code === '26000' || code === '42P05') {
      // The connection's prepared statements are not the ones `pg` remembers: a pooler
      // switched server connections under it, or someone deallocated them.
      this.#enabled = false;
      return true;
    }
    return false;
  }
}
