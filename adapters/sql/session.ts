/**
 * Running one statement through the router: the routed text, the retry without
 * comparison columns, and the call's flag context from `withFlagContext`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FlagContext } from '../../src/index.js';
import {
  createSqlRouter,
  type SqlParser,
  type SqlResult,
  type SqlRouter,
  type SqlRouterOptions,
  type SqlSession,
} from '../../src/internal.js';
import { loadSqlParser } from './parser.js';

const calls = new AsyncLocalStorage<FlagContext>();

/**
 * Runs `fn` with `context` as the flag evaluation context of every routed statement it
 * issues (its `targetingKey` buckets multi-row reads, as a repository call's does).
 *
 * @example
 * ```ts
 * app.use((req, _res, next) => withFlagContext({ targetingKey: req.user.id }, next));
 * ```
 */
export function withFlagContext<T>(context: FlagContext, fn: () => T): T {
  return calls.run(context, fn);
}

/** A statement as pg takes it. */
export interface StatementConfig {
  text: string;
  values?: readonly unknown[] | undefined;
  name?: string | undefined;
  rowMode?: string | undefined;
  [option: string]: unknown;
}

const SAVEPOINT = 'flagshift_compare';

/** Runs `config` under a savepoint of the open transaction: rolled back to it when it fails. */
async function underSavepoint<R>(
  execute: (config: StatementConfig) => Promise<R>,
  config: StatementConfig,
): Promise<R> {
  await execute({ text: `SAVEPOINT ${SAVEPOINT}` });
  try {
    const result = await execute(config);
    await execute({ text: `RELEASE SAVEPOINT ${SAVEPOINT}` });
    return result;
  } catch (error) {
    await execute({ text: `ROLLBACK TO SAVEPOINT ${SAVEPOINT}` });
    await execute({ text: `RELEASE SAVEPOINT ${SAVEPOINT}` });
    throw error;
  }
}

/** The router of one wrapped pool or database; PostgreSQL's parser loads before its first statement. */
export class RouterHandle {
  readonly router: SqlRouter;
  #parser: SqlParser | undefined;
  readonly #loading: Promise<SqlParser>;

  constructor(options: SqlRouterOptions) {
    this.router = createSqlRouter(() => this.#parser!, options);
    this.#loading = loadSqlParser().then((parser) => {
      this.#parser = parser;
      return parser;
    });
    // Surfaced by the first statement.
    this.#loading.catch(() => undefined);
  }

  /** Runs `config` through `execute`, routed. */
  async run<R extends SqlResult>(
    config: StatementConfig,
    session: SqlSession | undefined,
    execute: (config: StatementConfig) => Promise<R>,
  ): Promise<R> {
    if (this.#parser === undefined) await this.#loading;
    let routed = this.router.route(config.text, config.values, session, calls.getStore());
    if (routed instanceof Promise) routed = await routed;
    if (routed === undefined) return execute(config);
    // A named statement is prepared once per name and text: a rewritten text runs unnamed.
    const rewritten = (text: string): StatementConfig =>
      text === config.text ? config : { ...config, text, name: undefined };
    let result: R;
    try {
      result = routed.underSavepoint
        ? await underSavepoint(execute, rewritten(routed.sql))
        : await execute(rewritten(routed.sql));
    } catch (error) {
      if (routed.fallback === undefined) {
        routed.failed(error);
        throw error;
      }
      let retried: R;
      try {
        retried = await execute(rewritten(routed.fallback));
      } catch (again) {
        routed.failed(again);
        throw again;
      }
      return routed.finish(retried, true, error);
    }
    return routed.finish(result, false);
  }
}
