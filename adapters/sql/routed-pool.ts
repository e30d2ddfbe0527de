/**
 * A `pg` pool whose statements are routed. `routePool(pool)` returns the pool itself seen
 * through a proxy: still a `pg.Pool` to every check (`instanceof`, Drizzle's and
 * `@prisma/adapter-pg`'s), with `query` and `connect` routed and everything else the
 * pool's own. Talks to pg structurally (`PoolLike`), so pg stays the application's
 * dependency.
 */
import type { SqlResult, SqlRouterOptions, SqlSession } from '../../src/internal.js';
import { callbackOf, settle, settleConnect, statementOf } from './pg-call-forms.js';
import { RouterHandle, type StatementConfig } from './session.js';

/** The part of a pg client the routed pool uses. */
export interface PoolClientLike {
  /** Runs one statement given as a config object. */
  query(config: StatementConfig): Promise<SqlResult>;
  /** Runs one statement given as text and values. */
  query(text: string, values?: readonly unknown[]): Promise<SqlResult>;
  /** Returns the client to its pool; with an error, discards it. */
  release(error?: Error | boolean): void;
}

/** The part of a `pg.Pool` the routed pool uses. */
export interface PoolLike {
  /** Runs one statement given as a config object. */
  query(config: StatementConfig): Promise<SqlResult>;
  /** Runs one statement given as text and values. */
  query(text: string, values?: readonly unknown[]): Promise<SqlResult>;
  /** Checks a client out of the pool. */
  connect(): Promise<PoolClientLike>;
  /** Closes the pool. */
  end(): Promise<void>;
}

/** The router of each routed pool, for {@link routedPoolStats}. */
const handles = new WeakMap<object, RouterHandle>();

/**
 * Runs a statement on `target` in the form the caller used: `(text, values)` stays
 * `(text, values)`, a config stays a config, so pg sees the calls it would see unrouted.
 */
function executor(
  target: PoolLike | PoolClientLike,
  textForm: boolean,
): (config: StatementConfig) => Promise<SqlResult> {
  return textForm ? (config) => target.query(config.text, config.values) : (config) => target.query(config);
}

/** `target` seen through a proxy that replaces the members of `own` and binds the others to it. */
function overlay<T extends object>(target: T, own: Record<string, unknown>): T {
  // A map: the members looked up on every statement (`connect`, `query`, `release`) are found with one lookup.
  const members = new Map<string | symbol, unknown>(Object.entries(own));
  return new Proxy(target, {
    get(object, property) {
      const member = members.get(property);
      if (member !== undefined) return member;
      const value = Reflect.get(object, property, object);
      return typeof value === 'function' && property !== 'constructor' ? value.bind(object) : value;
    },
  });
}

/** pg's `query`, in all its call forms, routed and run on `target`. */
function routedQuery(target: PoolLike | PoolClientLike, session: SqlSession | undefined, handle: RouterHandle) {
  const inTextForm = executor(target, true);
  const asConfig = executor(target, false);
  return (textOrConfig: string | StatementConfig, values?: unknown, callback?: unknown) => {
    const textForm = typeof textOrConfig === 'string';
    const run = handle.run(statementOf(textOrConfig, values), session, textForm ? inTextForm : asConfig);
    return settle(run, callbackOf(values, callback));
  };
}

/**
 * A checked-out client: routed, with one decision per migration from BEGIN to
 * COMMIT/ROLLBACK. One routed client per connection, made at its first checkout: ORMs key
 * their own per-connection state by the client object (Kysely's connection wrapper and its
 * `onCreateConnection` hook), which a fresh wrapper per checkout would rebuild every time.
 */
function routedClient<C extends PoolClientLike>(client: C, handle: RouterHandle, clients: WeakMap<object, unknown>): C {
  const known = clients.get(client);
  if (known !== undefined) return known as C;
  const session: SqlSession = { pinned: undefined };
  const routed = overlay(client, {
    query: routedQuery(client, session, handle),
    release(error?: Error | boolean) {
      session.pinned = undefined;
      return client.release(error);
    },
  });
  clients.set(client, routed);
  return routed;
}

/**
 * Routes `pool`: every statement that touches a table of `options.migrations` is
 * rewritten for its stage; the others run as they are. Returns the pool, routed: hand it
 * to the ORM in place of the pool.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { Kysely, PostgresDialect } from 'kysely';
 * import { routePool } from 'flagshift/sql';
 *
 * const pool = routePool(new pg.Pool(), { migrations: [usernameRename], flags, metrics });
 * const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
 * ```
 */
export function routePool<P extends PoolLike>(pool: P, options: SqlRouterOptions): P {
  const handle = new RouterHandle(options);
  const clients = new WeakMap<object, unknown>();
  const routed = overlay(pool, {
    query: routedQuery(pool, undefined, handle),
    connect(callback?: unknown) {
      return settleConnect(
        pool.connect().then((client) => routedClient(client, handle, clients)),
        callback,
      );
    },
    // pg's `end` takes an optional callback (TypeORM's destroy waits on it).
    end(callback?: unknown) {
      handle.router.close();
      return settle(pool.end(), callback);
    },
  });
  handles.set(routed, handle);
  return routed;
}

/** The router of a pool from {@link routePool}, or `undefined`. */
export function poolRouter(pool: object): RouterHandle | undefined {
  return handles.get(pool);
}
