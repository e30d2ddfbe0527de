/**
 * Tracks which transaction the current async call chain is inside, so that a statement or
 * a nested `transaction()` issued through the driver while a transaction is open joins it
 * instead of waiting for a connection the transaction itself holds (a deadlock on a single
 * connection) or silently running outside it (on a pool).
 */
import type { NestingQueryable, Queryable, QueryResult } from './driver.js';
import { DriverError } from './errors.js';
import { Mutex } from './mutex.js';

/** Runs one statement on the connection a transaction holds. */
export type ExecuteStatement = (sql: string, params: readonly unknown[] | undefined) => Promise<QueryResult<unknown>>;

/** The subset of `AsyncLocalStorage` the scopes need; absent where the runtime has none. */
export interface AsyncContext<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

/** Shared by a transaction and every savepoint level nested in it. */
interface TransactionState {
  active: boolean;
  savepoints: number;
}

/** One level of an open transaction: the outermost, or a savepoint inside it. */
export interface TransactionScope {
  readonly execute: ExecuteStatement;
  readonly tx: Queryable;
  readonly state: TransactionState;
  /** Queues sibling nested transactions: two savepoints can't be open side by side. */
  readonly children: Mutex;
  /** This level's own state: a savepoint level closes before its transaction does. */
  readonly level: { open: boolean };
}

/** Opens, tracks and closes the transaction scopes of one driver. */
export class TransactionScopes {
  readonly #context: AsyncContext<TransactionScope> | undefined;
  /** Transactions of this driver whose body is running. */
  #open = 0;

  constructor(context: AsyncContext<TransactionScope> | undefined) {
    this.#context = context;
  }

  /**
   * Whether the caller runs inside an open transaction of this driver; `undefined` where
   * the runtime has no async context to tell by.
   */
  inside(): boolean | undefined {
    if (this.#context === undefined) return undefined;
    return this.current() !== undefined;
  }

  /** The transaction the caller runs inside, if it is still open. */
  current(): TransactionScope | undefined {
    // With none open, no caller can be inside one: the async context isn't asked (a lookup
    // on every statement outside transactions, the common case).
    if (this.#open === 0) return undefined;
    const scope = this.#context?.getStore();
    return scope?.state.active ? scope : undefined;
  }

  /**
   * Runs `fn` as the body of a transaction whose BEGIN has already been sent. The `tx`
   * handed to `fn` refuses statements once the body has settled, so a statement that
   * outlives its transaction can never land on a connection that was given back.
   */
  async runBody<T>(execute: ExecuteStatement, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const state: TransactionState = { active: true, savepoints: 0 };
    const level = { open: true };
    const own = guarded(execute, state, level);
    const scope: TransactionScope = {
      execute: own,
      tx: this.#nestingTx(asQuery(own), () => scope),
      state,
      children: new Mutex(),
      level,
    };
    this.#open++;
    try {
      return await this.#enter(scope, fn);
    } finally {
      this.#open--;
      state.active = false;
      level.open = false;
    }
  }

  /**
   * Runs `fn` inside `parent` under a savepoint: rolled back to it when `fn` throws. The
   * level's statements, and the savepoint's own commands, go through the levels they
   * belong to: once a level has closed (or the transaction has ended under a body that is
   * still running), nothing more is sent for it, so a late statement can neither outlive
   * the savepoint it was meant for nor reach a connection that was given back.
   */
  nested<T>(parent: TransactionScope, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return parent.children.run(async () => {
      const name = `flagshift_savepoint_${++parent.state.savepoints}`;
      await parent.execute(`SAVEPOINT ${name}`, undefined);
      const level = { open: true };
      const own = guarded(parent.execute, parent.state, level);
      const scope: TransactionScope = {
        execute: own,
        tx: this.#nestingTx(asQuery(own), () => scope),
        state: parent.state,
        children: new Mutex(),
        level,
      };
      let value: T;
      try {
        value = await this.#enter(scope, fn);
      } catch (error) {
        // Closed first: a statement of the body still running must not run after the rollback.
        level.open = false;
        // A failed rollback leaves the outer transaction aborted; it fails loudly there.
        await parent.execute(`ROLLBACK TO SAVEPOINT ${name}`, undefined).catch(() => undefined);
        throw error;
      }
      level.open = false;
      await parent.execute(`RELEASE SAVEPOINT ${name}`, undefined);
      return value;
    });
  }

  /**
   * A level's `tx`: its statements, and `transaction(fn)` to nest under it. Called from
   * inside a deeper level of the same transaction (a handle of an outer level used in an
   * inner level's body), it nests under the innermost open level instead, which would
   * otherwise wait for the caller to finish. That takes an async context: without one
   * (a runtime with no AsyncLocalStorage), use the innermost handle inside a nested body.
   */
  #nestingTx(query: Queryable['query'], scope: () => TransactionScope): NestingQueryable {
    return {
      query,
      transaction: <T>(fn: (tx: Queryable) => Promise<T>) => {
        const own = scope();
        if (!own.state.active || !own.level.open) {
          return Promise.reject(new DriverError('transaction already finished; nested transaction not begun'));
        }
        const current = this.current();
        return this.nested(current !== undefined && current.state === own.state ? current : own, fn);
      },
    };
  }

  #enter<T>(scope: TransactionScope, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#context === undefined ? fn(scope.tx) : this.#context.run(scope, () => fn(scope.tx));
  }
}

/** A level's `execute`: refuses once the level or its transaction has closed. */
function guarded(execute: ExecuteStatement, state: TransactionState, level: { open: boolean }): ExecuteStatement {
  return (sql, params) => {
    if (!state.active || !level.open) {
      return Promise.reject(new DriverError(`transaction already finished; statement not run: ${preview(sql)}`));
    }
    return execute(sql, params);
  };
}

/** A level's `query`: its `execute`, typed. */
function asQuery(execute: ExecuteStatement): Queryable['query'] {
  return <Row>(sql: string, params?: readonly unknown[]) => execute(sql, params) as Promise<QueryResult<Row>>;
}

function preview(sql: string): string {
  return sql.length > 80 ? `${sql.slice(0, 80)}...` : sql;
}
