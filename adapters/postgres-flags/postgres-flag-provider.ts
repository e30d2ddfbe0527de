import { z } from 'zod';
import { ConfigurationError, type Driver, type Queryable, type QueryResult } from '../../src/index.js';
import { parseOptions } from '../../src/internal.js';
import type { EvaluationContextLike } from '../openfeature/openfeature-flags.js';
import { createPgDriver } from '../pg/index.js';
import { createPgliteDriver, type PGliteLike } from '../pglite/pglite-driver.js';
import {
  ensureFlagTable,
  type FlagRecord,
  type FlagTable,
  type FlagTableOptions,
  type FlagValue,
  quotedChannel,
  readFlagTable,
  resolveFlagTable,
} from './flag-table.js';
import {
  type ListenPgliteLike,
  type ListenPoolLike,
  type ListenSession,
  type ListenSource,
  pgliteListenSource,
  poolListenSource,
} from './listen-source.js';
import { type FlagWriteOptions, removeFlag, setFlag } from './migration-flags.js';
import { openFeatureSdk } from './peer.js';

const {
  FlagNotFoundError,
  OpenFeatureEventEmitter,
  ProviderEvents,
  ProviderNotReadyError,
  StandardResolutionReasons,
  TypeMismatchError,
} = openFeatureSdk;

/** What a handler is told of a provider event: OpenFeature's `EventDetails`. */
export type ProviderEventDetailsLike = {
  /** The provider that emitted it. */
  readonly providerName: string;
  /** The OpenFeature domain it is bound to, if any. */
  readonly domain?: string;
  /** Why the event was emitted. */
  readonly message?: string;
  /** The keys of the flags that changed, on `ConfigurationChanged`. */
  readonly flagsChanged?: string[];
} & Record<string, unknown>;

/**
 * A handler of OpenFeature's event emitter. Declared as a method so that a handler of
 * OpenFeature's own `EventDetails` fits both ways, as it does in OpenFeature.
 */
export type ProviderEventHandlerLike = {
  /** Handles one event. */
  handle(details?: ProviderEventDetailsLike): unknown;
}['handle'];

/**
 * The provider's event emitter, an OpenFeature `OpenFeatureEventEmitter`, typed by what an
 * OpenFeature SDK calls on it so that flagshift's types hold without `@openfeature/server-sdk`.
 */
export interface ProviderEventEmitterLike {
  /** Emits the provider event `eventType`. */
  emit(eventType: string, context?: Record<string, unknown>): void;
  /** Calls `handler` on `eventType`. */
  addHandler(eventType: string, handler: ProviderEventHandlerLike): void;
  /** Stops calling `handler` on `eventType`. */
  removeHandler(eventType: string, handler: ProviderEventHandlerLike): void;
  /** Removes every handler, of `eventType` or of all events. */
  removeAllHandlers(eventType?: string): void;
  /** The handlers of `eventType`. */
  getHandlers(eventType: string): ProviderEventHandlerLike[];
  /** Sets the logger the emitter reports handler failures to. */
  setLogger(logger: unknown): ProviderEventEmitterLike;
}

/** What a provider's evaluation returns: OpenFeature's `ResolutionDetails`. */
export interface ResolutionDetailsLike<T> {
  /** The flag's value. */
  readonly value: T;
  /** Why this value: `STATIC`, or `CACHED` while the table can't be heard. */
  readonly reason?: string;
  /** When the flag was last written, as `updatedAt` (ISO 8601). */
  readonly flagMetadata?: Readonly<Record<string, string | number | boolean>>;
}

/** A JSON value an object flag may hold: OpenFeature's `JsonValue`. */
export type JsonValueLike = null | string | number | boolean | JsonValueLike[] | { [key: string]: JsonValueLike };

/** Options of {@link createPostgresFlagProvider}. Give exactly one of `pool`, `connectionString`, `pglite`. */
export interface PostgresFlagProviderOptions extends FlagTableOptions {
  /**
   * A `pg.Pool` to write flags with. The provider listens, and reloads the flags, on a
   * connection of its own opened with the pool's settings (a pool without `Client` and
   * `options` lends it one of its connections instead). It never ends the pool.
   * @default undefined
   */
  readonly pool?: ListenPoolLike;
  /**
   * A connection string: the provider opens (and on close ends) a small pool of its own
   * (`pg`, an optional peer dependency, is loaded on demand).
   * @default undefined
   */
  readonly connectionString?: string;
  /**
   * A PGlite instance (in-process PostgreSQL). Its `listen` only hears this process, so it
   * is for tests, demos and single-process tools.
   * @default undefined
   */
  readonly pglite?: ListenPgliteLike;
  /**
   * Create the schema and table at `initialize` when missing. Turn off for a role without
   * `CREATE` on the database; the table must then exist.
   * @default true
   */
  readonly createTable?: boolean;
  /**
   * Every so often the provider checks its `LISTEN` connection answers and reloads the
   * table, a safety net for a connection that died silently (a half-open TCP link). `0`
   * turns it off.
   * @default 30000
   */
  readonly refreshIntervalMs?: number;
  /**
   * First delay before reconnecting a lost `LISTEN` connection, in milliseconds; it doubles
   * (with jitter) on each failed attempt, up to `maxReconnectDelayMs`.
   * @default 100
   */
  readonly reconnectDelayMs?: number;
  /**
   * Longest delay between reconnection attempts, in milliseconds. Short, so processes
   * follow the flags again well within a second of the server being back (an attempt on a
   * server that is down is refused at once, so trying often costs little).
   * @default 250
   */
  readonly maxReconnectDelayMs?: number;
  /**
   * `application_name` of the connections the provider opens from `connectionString`.
   * @default 'flagshift-flags'
   */
  readonly applicationName?: string;
}

const optionsSchema = z.strictObject({
  pool: z
    .custom<ListenPoolLike>(
      (value) =>
        typeof (value as Partial<ListenPoolLike> | null)?.query === 'function' &&
        typeof (value as Partial<ListenPoolLike>).connect === 'function',
      'must be a pg.Pool (with query() and connect())',
    )
    .optional(),
  connectionString: z.string().min(1, 'must be a non-empty string').optional(),
  pglite: z
    .custom<ListenPgliteLike>(
      (value) =>
        typeof (value as Partial<ListenPgliteLike> | null)?.query === 'function' &&
        typeof (value as Partial<ListenPgliteLike>).listen === 'function',
      'must be a PGlite instance (with query() and listen())',
    )
    .optional(),
  schema: z.string().optional(),
  table: z.string().optional(),
  channel: z.string().optional(),
  createTable: z.boolean().optional(),
  refreshIntervalMs: z.number().int().min(0).max(86_400_000).optional(),
  reconnectDelayMs: z.number().int().min(1).max(600_000).optional(),
  maxReconnectDelayMs: z.number().int().min(1).max(600_000).optional(),
  applicationName: z.string().max(63).optional(),
});

type FlagType = 'boolean' | 'string' | 'number' | 'object';

/**
 * An OpenFeature server provider whose flags live in a PostgreSQL table. Built by
 * {@link createPostgresFlagProvider}.
 *
 * Evaluations read an in-memory snapshot: no query per evaluation. The snapshot is loaded
 * at `initialize` and reloaded whenever a write announces itself with `pg_notify` on the
 * table's channel (every write through this package does, in the writing transaction), so
 * every process sees a change within a round trip and emits `ConfigurationChanged`, which
 * makes flagshift drop its cached decisions at once.
 *
 * When the `LISTEN` connection is lost the provider emits `Stale`, keeps serving the last
 * snapshot (reason `CACHED`), reconnects with exponential backoff and jitter, reloads the
 * table (emitting `ConfigurationChanged` for whatever changed meanwhile) and emits `Ready`.
 */
export class PostgresFlagProvider {
  readonly metadata = { name: 'flagshift-postgres-flags' } as const;
  readonly runsOn = 'server' as const;
  /** Where OpenFeature hears `ConfigurationChanged`, `Stale` and `Ready`. */
  readonly events: ProviderEventEmitterLike = new OpenFeatureEventEmitter();
  /** Where the flags live. */
  readonly table: FlagTable;

  readonly #options: PostgresFlagProviderOptions;
  #driver: Driver | undefined;
  #listen: ListenSource | undefined;
  #ownPool: { end(): Promise<void> } | undefined;
  #recovering = false;
  #session: ListenSession | undefined;
  #snapshot: Map<string, FlagRecord> | undefined;
  #stale = false;
  #closed = false;
  #attempt = 0;
  #recoveryTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #queued: Promise<void> | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(options: PostgresFlagProviderOptions) {
    this.#options = options;
    this.table = resolveFlagTable(options, 'postgres flag provider');
  }

  /** Creates the table if needed, starts listening and loads the snapshot. */
  async initialize(_context?: EvaluationContextLike): Promise<void> {
    // Initialized twice (by hand, then by the SDK): one session and one timer are enough.
    if (this.#session !== undefined && !this.#closed) return this.#reloadSoon();
    this.#closed = false;
    const driver = await this.#db();
    if (this.#options.createTable !== false) await ensureFlagTable(driver, this.table);
    // Listen before loading: a change committed in between is heard rather than lost.
    this.#session = await this.#openSession();
    await this.#reload(false);
    const interval = this.#options.refreshIntervalMs ?? 30_000;
    if (interval > 0) {
      this.#refreshTimer = setInterval(() => void this.#refreshTick(), interval);
      this.#refreshTimer.unref();
    }
  }

  /** Stops listening and ends the pool the provider opened itself. */
  async onClose(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#recoveryTimer);
    clearInterval(this.#refreshTimer);
    const session = this.#session;
    this.#session = undefined;
    await session?.close().catch(() => undefined);
    await this.#running;
    const pool = this.#ownPool;
    this.#ownPool = undefined;
    this.#driver = undefined;
    this.#listen = undefined;
    await pool?.end().catch(() => undefined);
  }

  /** A boolean flag from the snapshot; throws OpenFeature's `FLAG_NOT_FOUND` or `TYPE_MISMATCH` errors. */
  resolveBooleanEvaluation(
    flagKey: string,
    _defaultValue: boolean,
    _context?: EvaluationContextLike,
    _logger?: unknown,
  ): Promise<ResolutionDetailsLike<boolean>> {
    return this.#resolve(flagKey, 'boolean');
  }

  /** A string flag from the snapshot, as `resolveBooleanEvaluation`. */
  resolveStringEvaluation(
    flagKey: string,
    _defaultValue: string,
    _context?: EvaluationContextLike,
    _logger?: unknown,
  ): Promise<ResolutionDetailsLike<string>> {
    return this.#resolve(flagKey, 'string');
  }

  /** A number flag from the snapshot, as `resolveBooleanEvaluation`. */
  resolveNumberEvaluation(
    flagKey: string,
    _defaultValue: number,
    _context?: EvaluationContextLike,
    _logger?: unknown,
  ): Promise<ResolutionDetailsLike<number>> {
    return this.#resolve(flagKey, 'number');
  }

  /** An object or array flag from the snapshot, as `resolveBooleanEvaluation`. */
  resolveObjectEvaluation<T extends JsonValueLike>(
    flagKey: string,
    _defaultValue: T,
    _context?: EvaluationContextLike,
    _logger?: unknown,
  ): Promise<ResolutionDetailsLike<T>> {
    return this.#resolve(flagKey, 'object');
  }

  /** The flags as this provider currently serves them. Empty before `initialize`. */
  snapshot(): ReadonlyMap<string, FlagValue> {
    return new Map([...(this.#snapshot ?? new Map<string, FlagRecord>()).values()].map((r) => [r.key, r.value]));
  }

  /** Reloads the table now (normally unnecessary: notifications do it). */
  async refresh(): Promise<void> {
    await this.#reloadSoon();
  }

  /**
   * Writes a flag into this provider's table and notifies every provider listening on it,
   * this one included. Migration stages are better set with `setMigrationFlags`, which
   * validates them and logs the change.
   */
  async setFlag(flagKey: string, value: FlagValue, options: Pick<FlagWriteOptions, 'actor'> = {}): Promise<void> {
    await setFlag(await this.#db(), flagKey, value, { ...this.#tableOptions(), ...options });
  }

  /** Removes a flag from the table; evaluations of it then report `FLAG_NOT_FOUND`. */
  async removeFlag(flagKey: string, options: Pick<FlagWriteOptions, 'actor'> = {}): Promise<void> {
    await removeFlag(await this.#db(), flagKey, { ...this.#tableOptions(), ...options });
  }

  #tableOptions(): FlagTableOptions {
    return { schema: this.table.schema, table: this.table.table, channel: this.table.channel };
  }

  async #resolve<T>(flagKey: string, type: FlagType): Promise<ResolutionDetailsLike<T>> {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) throw new ProviderNotReadyError('postgres flag provider is not initialized');
    const record = snapshot.get(flagKey);
    if (record === undefined) throw new FlagNotFoundError(`flag "${flagKey}" is not in ${this.table.display}`);
    const value = record.value;
    const actual = Array.isArray(value) ? 'array' : typeof value;
    if (type === 'object' ? actual !== 'object' && actual !== 'array' : actual !== type) {
      throw new TypeMismatchError(`flag "${flagKey}" holds ${article(actual)} ${actual}, not ${article(type)} ${type}`);
    }
    return {
      value: value as T,
      reason: this.#stale ? StandardResolutionReasons.CACHED : StandardResolutionReasons.STATIC,
      flagMetadata: { updatedAt: record.updatedAt.toISOString() },
    };
  }

  async #db(): Promise<Driver> {
    if (this.#driver !== undefined) return this.#driver;
    const { pool, connectionString, pglite } = this.#options;
    if (pglite !== undefined) {
      this.#driver = createPgliteDriver(pglite as unknown as PGliteLike);
      this.#listen = pgliteListenSource(pglite, quotedChannel(this.table));
    } else {
      let listenPool = pool;
      if (listenPool === undefined) {
        const own = await openOwnPool(connectionString!, this.#options.applicationName ?? 'flagshift-flags');
        this.#ownPool = own;
        listenPool = own;
      }
      this.#driver = createPgDriver(listenPool, { kind: 'pool' });
      this.#listen = poolListenSource(listenPool, this.table.channel, quotedChannel(this.table));
    }
    return this.#driver;
  }

  #openSession(): Promise<ListenSession> {
    return this.#listen!.open(
      () => {
        this.#reloadSoon().catch((error: unknown) => this.#troubled(error));
      },
      (error) => {
        this.#session = undefined;
        this.#troubled(error);
      },
    );
  }

  /** One reload at a time; notifications arriving during one queue exactly one more. */
  #reloadSoon(): Promise<void> {
    if (this.#queued !== undefined) return this.#queued;
    const next = this.#running.then(() => {
      this.#queued = undefined;
      return this.#reload(true);
    });
    this.#queued = next;
    this.#running = next.catch(() => undefined);
    return next;
  }

  async #reload(announce: boolean): Promise<void> {
    if (this.#closed) return;
    const session = this.#session;
    // On the LISTEN connection while there is one: see ListenSession.query.
    const db: Queryable =
      session === undefined
        ? this.#driver!
        : { query: async <Row>(sql: string) => (await session.query(sql)) as QueryResult<Row> };
    const next = await readFlagTable(db, this.table);
    const previous = this.#snapshot;
    this.#snapshot = next;
    if (!announce || previous === undefined) return;
    const changed = changedKeys(previous, next);
    if (changed.length > 0) this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: changed });
  }

  /** The snapshot may be out of date: say so once, and try to recover. */
  #troubled(error: unknown): void {
    if (this.#closed) return;
    if (!this.#stale) {
      this.#stale = true;
      this.events.emit(ProviderEvents.Stale, {
        message: `postgres flags may be out of date: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    this.#scheduleRecovery();
  }

  #scheduleRecovery(): void {
    if (this.#closed || this.#recoveryTimer !== undefined) return;
    const base = this.#options.reconnectDelayMs ?? 100;
    const max = this.#options.maxReconnectDelayMs ?? 250;
    const ceiling = Math.min(max, base * 2 ** Math.min(this.#attempt, 20));
    // Jitter spreads the reconnections of many processes after a server restart.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#attempt++;
    this.#recoveryTimer = setTimeout(() => {
      this.#recoveryTimer = undefined;
      void this.#recover();
    }, delay);
  }

  async #recover(): Promise<void> {
    // One recovery at a time: a second one opening a session too would leak the first.
    if (this.#closed || this.#recovering) return;
    this.#recovering = true;
    try {
      if (this.#session === undefined) {
        const session = await this.#openSession();
        if (this.#closed || this.#session !== undefined) {
          await session.close();
          return;
        }
        this.#session = session;
      }
      await this.#reloadSoon();
      this.#attempt = 0;
      if (this.#stale && !this.#closed) {
        this.#stale = false;
        this.events.emit(ProviderEvents.Ready, { message: 'postgres flags are listening again' });
      }
    } catch {
      this.#scheduleRecovery();
    } finally {
      this.#recovering = false;
    }
  }

  async #refreshTick(): Promise<void> {
    if (this.#closed || this.#recoveryTimer !== undefined || this.#recovering) return;
    try {
      if (this.#session === undefined) throw new Error('not listening');
      await this.#session.ping();
      await this.#reloadSoon();
    } catch (error) {
      this.#troubled(error);
    }
  }
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function changedKeys(previous: ReadonlyMap<string, FlagRecord>, next: ReadonlyMap<string, FlagRecord>): string[] {
  const changed: string[] = [];
  for (const [key, record] of next) {
    const before = previous.get(key);
    if (before === undefined || JSON.stringify(before.value) !== JSON.stringify(record.value)) changed.push(key);
  }
  for (const key of previous.keys()) if (!next.has(key)) changed.push(key);
  return changed.sort();
}

async function openOwnPool(
  connectionString: string,
  applicationName: string,
): Promise<ListenPoolLike & { end(): Promise<void> }> {
  let pg: typeof import('pg')['default'];
  try {
    pg = (await import('pg')).default;
  } catch (cause) {
    throw new ConfigurationError(
      'package "pg" could not be loaded; install it to give the postgres flag provider a connectionString: npm install pg',
      { cause },
    );
  }
  // The LISTEN session has a connection of its own, which also serves reloads; these serve
  // writes, and reloads while the provider is not listening.
  const pool = new pg.Pool({ connectionString, max: 3, keepAlive: true, application_name: applicationName });
  // An idle connection the server terminates must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Creates an OpenFeature server provider that keeps flags in a PostgreSQL table (created
 * when missing: `key text PRIMARY KEY, value jsonb, updated_at, updated_by`) and tells
 * every process about a change at once through `LISTEN`/`NOTIFY`. It serves any flag key
 * with a JSON value; flagshift's stage and read-percentage flags are two of them.
 *
 * Resolution follows OpenFeature: a missing flag is `FLAG_NOT_FOUND`, a value of another
 * type `TYPE_MISMATCH` (arrays count as objects); the SDK then returns the caller's default.
 *
 * Works on a `pg.Pool` (or a connection string) across processes, and on PGlite within one
 * process.
 *
 * @throws {ConfigurationError} when an option is invalid.
 * @example
 * ```ts
 * import { OpenFeature } from '@openfeature/server-sdk';
 * import { createOpenFeatureFlags } from 'flagshift/openfeature';
 * import { createPostgresFlagProvider } from 'flagshift/postgres-flags';
 *
 * const provider = createPostgresFlagProvider({ connectionString: process.env.DATABASE_URL });
 * await OpenFeature.setProviderAndWait('migrations', provider);
 * const flags = createOpenFeatureFlags({ domain: 'migrations' });
 * ```
 */
export function createPostgresFlagProvider(options: PostgresFlagProviderOptions): PostgresFlagProvider {
  const valid = parseOptions('postgres flag provider', optionsSchema, options, {
    pool: 'a pg.Pool (with query() and connect())',
    connectionString: 'a non-empty string',
    pglite: 'a PGlite instance (with query() and listen())',
    schema: 'a string',
    table: 'a string',
    channel: 'a string',
    createTable: 'true or false',
    refreshIntervalMs: 'an integer from 0 to 86400000',
    reconnectDelayMs: 'an integer from 1 to 600000',
    maxReconnectDelayMs: 'an integer from 1 to 600000',
    applicationName: 'a string of at most 63 characters',
  });
  const sources = (['pool', 'connectionString', 'pglite'] as const).filter((key) => valid[key] !== undefined);
  if (sources.length !== 1) {
    throw new ConfigurationError(
      `postgres flag provider needs exactly one of "pool", "connectionString" and "pglite", got ${
        sources.length === 0 ? 'none' : sources.map((key) => `"${key}"`).join(' and ')
      }`,
    );
  }
  return new PostgresFlagProvider(options);
}
