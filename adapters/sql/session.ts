/**
 * Running one statement through the router: the routed text, the retry without
 * comparison columns, and the call's flag context from `withFlagContext`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FlagContext } from '../../src/index.js';
import {
  createSqlRouter,
  type RoutedQuery,
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

  /**
   * Runs `config` through `execute`, routed. Written without async functions on the common
   * path (no comparison columns), so that routing adds no promise hops to the driver's.
   */
  run<R extends SqlResult>(
    config: StatementConfig,
    session: SqlSession | undefined,
    execute: (config: StatementConfig) => Promise<R>,
  ): Promise<R> {
    if (this.#parser === undefined) return this.#loading.then(() => this.run(config, session, execute));
    let routed: RoutedQuery | undefined | Promise<RoutedQuery | undefined>;
    try {
      routed = this.router.route(config.text, config.values, session, calls.getStore());
    } catch (error) {
      return Promise.reject(error);
    }
    if (routed instanceof Promise) return routed.then((decided) => runRouted(decided, config, execute));
    return runRouted(routed, config, execute);
  }
}

/** {@link RouterHandle.run} once routed. */
function runRouted<R extends SqlResult>(
  routed: RoutedQuery | undefined,
  config: StatementConfig,
  execute: (config: StatementConfig) => Promise<R>,
): Promise<R> {
  if (routed === undefined) return execute(config);
  if (routed.passive) return execute(withText(config, routed.sql));
  if (routed.fallback !== undefined) return runComparing(routed, config, execute);
  return execute(withText(config, routed.sql)).then(
    (result) => routed.finish(result, false),
    (error: unknown) => {
      routed.failed(error);
      throw error;
    },
  );
}

/** A named statement is prepared once per name and text: a rewritten text runs unnamed. */
function withText(config: StatementConfig, text: string): StatementConfig {
  return text === config.text ? config : { ...config, text, name: undefined };
}

/** A statement with comparison columns: retried without them when it fails, under a savepoint inside a transaction. */
async function runComparing<R extends SqlResult>(
  routed: RoutedQuery,
  config: StatementConfig,
  execute: (config: StatementConfig) => Promise<R>,
): Promise<R> {
  let result: R;
  try {
    result = routed.underSavepoint
      ? await underSavepoint(execute, withText(config, routed.sql))
      : await execute(withText(config, routed.sql));
  } catch (error) {
    let retried: R;
    try {
      retried = await execute(withText(config, routed.fallback!));
    } catch (again) {
      routed.failed(again);
      throw again;
    }
    return routed.finish(retried, true, error);
  }
  return routed.finish(result, false);
}
