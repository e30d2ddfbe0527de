/**
 * The repository's public types, and the few internal ones its modules share. Every
 * module of this folder may import from here; this file imports none of them.
 */
import type { MigrationColumnState } from '../catalog/index.js';
import type { FlagContext, FlagSource, PinnedDecisions, ReadGuard, Route, StageResolver } from '../flags/index.js';
import type { Driver } from '../kernel/index.js';
import type { MetricsSink } from '../metrics/index.js';

/** Options of {@link createRepository}. */
export interface RepositoryOptions {
  /** The database, from `flagshift/pg` or `flagshift/pglite`. */
  readonly driver: Driver;
  /** Where stage and read-percentage flags come from, e.g. `createOpenFeatureFlags()`. Required when there are migrations. */
  readonly flags?: FlagSource;
  /** A resolver shared with other repositories (one flag cache for all). @default one per repository, over `flags` */
  readonly resolver?: StageResolver;
  /** Receives every metric event. @default none */
  readonly metrics?: MetricsSink;
  /** Evaluation context merged into every flag evaluation. @default {} */
  readonly context?: FlagContext;
  /** Flag decision cache. @default { size: 10000, ttlMs: 1000 } */
  readonly flagCache?: { readonly size?: number; readonly ttlMs?: number };
  /** Longest wait for one flag evaluation before its fallback is used, in ms. @default 50 */
  readonly flagTimeoutMs?: number;
  /**
   * Consulted on every read: while it says a migration's new side must not serve reads
   * (a guardrail tripped), reads that would be served new are served old and still
   * compared, and dual writes go on. `complete` is never held back: its old columns may
   * be gone. @default none
   */
  readonly readGuard?: ReadGuard;
}

/** Per-call options. */
export interface CallOptions {
  /** Evaluation context of this call. Its `targetingKey`, when set, routes instead of the entity key. */
  readonly context?: FlagContext;
}

/** Sort order of {@link FindQuery}. */
export type OrderBy<E> = (keyof E & string) | { readonly field: keyof E & string; readonly direction?: 'asc' | 'desc' };

/**
 * Operators every field takes, in a {@link Where} filter. A NULL field matches none of them
 * but `null: true`: `not: 'ada'` leaves out rows whose field is NULL, as in SQL and Prisma.
 */
export interface EqualityOperators<T> {
  /** One of these values. An empty list matches nothing. */
  readonly in?: readonly T[];
  /** None of these values, and not NULL. An empty list matches every row with a value. */
  readonly notIn?: readonly T[];
  /** Not this value (`not: null`: any value). */
  readonly not?: T | null;
  /** `true`: the field is NULL; `false`: it has a value. */
  readonly null?: boolean;
}

/** Operators of an ordered field (number, bigint, Date, string), in a {@link Where} filter. */
export interface RangeOperators<T> extends EqualityOperators<T> {
  readonly gt?: T;
  readonly gte?: T;
  readonly lt?: T;
  readonly lte?: T;
}

/** Operators of a text field, in a {@link Where} filter. */
export interface TextOperators<T> extends RangeOperators<T> {
  /** The text starts with this prefix (case-sensitive; `%` and `_` are plain characters). */
  readonly startsWith?: string;
}

/** The operators a field of type `T` (without null) takes; a JSON field takes none, only a value. */
export type FieldOperators<T> = [T] extends [string]
  ? TextOperators<T>
  : [T] extends [number | bigint | Date]
    ? RangeOperators<T>
    : [T] extends [boolean]
      ? EqualityOperators<T>
      : never;

/**
 * A filter on logical fields, all of which must hold: per field a value it must equal
 * (`null` matches NULL), or an object of operators (`{ gte: 18, lt: 65 }`).
 */
export type Where<E> = { readonly [F in keyof E]?: E[F] | null | FieldOperators<NonNullable<E[F]>> };

/** A query on logical fields. */
export interface FindQuery<E> {
  /** What the entities must match. @default {} (every row) */
  readonly where?: Where<E>;
  readonly orderBy?: OrderBy<E> | readonly OrderBy<E>[];
  /** At most this many rows. @default no limit */
  readonly limit?: number;
  /**
   * Only entities after this cursor (a page's `next`) in this query's order. Made by
   * {@link Repository.findPage} for the same `orderBy`. @default from the first entity
   */
  readonly after?: string;
  /** Fetch and return only these fields. @default every field */
  readonly select?: readonly (keyof E & string)[];
}

/** A query of one page: a {@link FindQuery} whose `limit` is the page size. */
export interface PageQuery<E> extends FindQuery<E> {
  readonly limit: number;
}

/** One page of entities, and the cursor of the next one. */
export interface Page<T> {
  readonly items: T[];
  /** Pass as `after` to fetch the next page; `undefined` when this page was the last (it has fewer than `limit` items). */
  readonly next: string | undefined;
}

/**
 * The key of an entity: an object of the key fields, or, for a one-field key, that field's
 * value alone (`get(42)`).
 */
export type KeyInput<E, K extends keyof E> = true extends IsUnion<K> ? Pick<E, K> : Pick<E, K> | E[K];

/** Whether `T` is a union of several types (a key of several fields). */
type IsUnion<T, All = T> = T extends unknown ? ([All] extends [T] ? false : true) : never;

/**
 * An entity to insert: every field, the key fields optional. A key field left out is filled
 * by its column's default (`serial`, an identity, `DEFAULT gen_random_uuid()`).
 */
export type Insertable<E, K extends keyof E> = Omit<E, K> & Partial<Pick<E, K>>;

/** Typed, flag-routed access to one table. Create with {@link createRepository}. */
export interface Repository<E, K extends keyof E = keyof E> {
  /** The entity with this key, or `undefined`. */
  get(key: KeyInput<E, K>, options?: CallOptions): Promise<E | undefined>;
  /** The entities with these keys that exist, in the order of `keys`. */
  getMany(keys: readonly KeyInput<E, K>[], options?: CallOptions): Promise<E[]>;
  /** Entities that match `query.where`, ordered and limited; with `select`, only those fields of them. */
  find<const S extends keyof E & string>(
    query: FindQuery<E> & { readonly select: readonly S[] },
    options?: CallOptions,
  ): Promise<Pick<E, S>[]>;
  /** Entities that match `query.where`, ordered and limited. */
  find(query?: FindQuery<E>, options?: CallOptions): Promise<E[]>;
  /**
   * One page of the entities that match `query.where`, in `query.orderBy` and then key
   * order, after `query.after`. The page is keyset-paged: rows inserted or deleted before
   * the cursor never shift the next page, so no entity is returned twice or skipped.
   */
  findPage<const S extends keyof E & string>(
    query: PageQuery<E> & { readonly select: readonly S[] },
    options?: CallOptions,
  ): Promise<Page<Pick<E, S>>>;
  /** One page of the entities that match `query.where`, keyset-paged. */
  findPage(query: PageQuery<E>, options?: CallOptions): Promise<Page<E>>;
  /** How many entities match `where`, routed and compared as `find` is. */
  count(where?: Where<E>, options?: CallOptions): Promise<number>;
  /**
   * Inserts an entity, validated first. Returns the stored entity, with the key the
   * database generated when the entity left it out.
   */
  insert(entity: Insertable<E, K>, options?: CallOptions): Promise<E>;
  /** Sets some fields of one entity, validated first. Returns whether the entity exists. */
  update(key: KeyInput<E, K>, patch: Partial<Omit<E, K>>, options?: CallOptions): Promise<boolean>;
  /**
   * Inserts the entity or replaces its fields. Returns the stored entity. Without its key
   * it is an insert with a generated key (a fresh key has no row to replace).
   */
  upsert(entity: Insertable<E, K>, options?: CallOptions): Promise<E>;
  /** Deletes one entity. Returns whether it existed. */
  delete(key: KeyInput<E, K>, options?: CallOptions): Promise<boolean>;
  /**
   * Runs `fn` in one database transaction. The flags are evaluated once per migration at
   * first use and that decision holds for everything inside, so a flag change never
   * splits a transaction between stages. `tx.transaction()` runs under a savepoint: when
   * its callback throws, only its own writes are rolled back.
   */
  transaction<T>(fn: (tx: Repository<E, K>) => Promise<T>, options?: CallOptions): Promise<T>;
  /**
   * Checks that every column the table and its migrations name exists. Runs on first use
   * anyway; call it at startup to fail fast. Returns the missing columns per migration side.
   */
  check(): Promise<ReadonlyMap<string, MigrationColumnState>>;
  /** Releases the flag subscription of a resolver this repository created. */
  close(): void;
}

// ---- shared by the modules of this folder ----

/** An entity as the data path handles it: logical fields by name. */
export type Entity = Record<string, unknown>;

/** The flag state of one call: its evaluation context, and the decisions a transaction pinned. */
export interface CallState {
  readonly context: FlagContext | undefined;
  readonly pinned: PinnedDecisions | undefined;
}

/** What one read fetches and does for one migration and one entity. */
export interface ReadRoute {
  readonly route: Route;
  /** Whether this read compares (the stage compares and the sample hit). */
  compare: boolean;
  /** Cross-table: whether the side-table read runs. */
  side: boolean;
}

/** Side-table rows of a read: per plan index, per quoted table, rows by key id. */
export type SideRows = ReadonlyMap<number, Map<string, Map<string, Entity>>>;
