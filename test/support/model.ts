/**
 * An in-memory model of a `users` table migrating `user_name` (old) to `username` (new),
 * for model-based tests. The model keeps BOTH physical columns of every row, so it can say
 * exactly what a read must return whichever side serves it, which rows may legitimately
 * differ between the sides, and which metric events each operation must emit.
 *
 * The stage table below is transcribed from the stage contract (docs/STAGES.md), not imported
 * from `src/stages.ts`: the model is the specification the SDK is checked against.
 */
import fc from 'fast-check';
import { isInReadPercentage, type Side, type Stage } from 'flagshift';
import { type QueryCommand, queryCommand } from './model-queries.js';

/** What one stage does, per docs/STAGES.md. */
export interface StageSpec {
  readonly serves: Side;
  readonly writesOld: boolean;
  readonly writesNew: boolean;
  readonly compares: boolean;
}

/** The email an old app version's inserts carry. */
export const LEGACY_EMAIL = 'legacy@x';

/**
 * The old app version's write, `$1` the id and `$2` the value: an upsert that knows only
 * the old column.
 */
export function rawOldWriteSql(table: string): string {
  return `INSERT INTO ${table} (id, user_name, email) VALUES ($1, $2, '${LEGACY_EMAIL}')
    ON CONFLICT (id) DO UPDATE SET user_name = EXCLUDED.user_name`;
}

/** The stage table of docs/STAGES.md. */
export const STAGE_SPEC: Readonly<Record<Stage, StageSpec>> = {
  off: { serves: 'old', writesOld: true, writesNew: false, compares: false },
  dualwrite: { serves: 'old', writesOld: true, writesNew: true, compares: false },
  shadow: { serves: 'old', writesOld: true, writesNew: true, compares: true },
  live: { serves: 'new', writesOld: true, writesNew: true, compares: true },
  rampdown: { serves: 'new', writesOld: true, writesNew: true, compares: false },
  complete: { serves: 'new', writesOld: false, writesNew: true, compares: false },
};

/** Stages in which every write sets both sides. */
export const DUAL_WRITE_STAGES = ['dualwrite', 'shadow', 'live', 'rampdown'] as const satisfies readonly Stage[];
/** All six stages. */
export const ALL_STAGES = ['off', 'dualwrite', 'shadow', 'live', 'rampdown', 'complete'] as const;

/** The expected route of one entity (or one query) under a stage and read percentage. */
export interface ExpectedRoute extends StageSpec {
  /** `live` outside the read percentage behaves as `shadow`. */
  readonly effective: Stage;
}

/**
 * The route docs/STAGES.md prescribes: in `live`, an entity whose bucket (flagd `fractional`,
 * over the stage flag key and the bucketing key) is below the percentage is served new,
 * the others behave as in `shadow`. Other stages ignore the percentage.
 */
export function expectedRoute(stage: Stage, percent: number, stageFlagKey: string, bucketKey: string): ExpectedRoute {
  const effective = stage === 'live' && !isInReadPercentage(percent, stageFlagKey, bucketKey) ? 'shadow' : stage;
  return { effective, ...STAGE_SPEC[effective] };
}

/** One row as both sides store it. */
export interface PhysicalRow {
  readonly email: string;
  /** `user_name`, the old column. */
  readonly old: string | null;
  /** `username`, the new column. */
  readonly new: string | null;
}

/** The logical user. */
export interface User {
  readonly id: number;
  readonly username: string;
  readonly email: string;
}

/** A data command: the repository call it stands for. */
export type DataCommand =
  | { readonly op: 'insert'; readonly id: number; readonly username: string; readonly email: string }
  | { readonly op: 'upsert'; readonly id: number; readonly username: string; readonly email: string }
  | { readonly op: 'update'; readonly id: number; readonly username?: string; readonly email?: string }
  | { readonly op: 'delete'; readonly id: number };

/** A read command. `tk` is a call-context targeting key, which routes instead of the entity key. */
export type ReadCommand =
  | { readonly op: 'get'; readonly id: number; readonly tk?: string }
  | { readonly op: 'getMany'; readonly ids: readonly number[]; readonly tk?: string }
  | { readonly op: 'findByUsername'; readonly username: string; readonly tk?: string }
  | { readonly op: 'findByEmail'; readonly email: string };

/**
 * A page walk with writes between its pages: one write after each page, as long as there
 * are writes left. Keyset pages must return twice, and skip, no entity that existed
 * throughout and kept its place in the order.
 */
export interface PagesDuringWrites {
  readonly op: 'pagesDuringWrites';
  readonly order: 'id-desc' | 'email-asc';
  readonly limit: number;
  readonly writes: readonly DataCommand[];
}

/** Every command of a generated sequence. */
export type Command =
  | DataCommand
  | ReadCommand
  | QueryCommand
  | PagesDuringWrites
  | { readonly op: 'stage'; readonly stage: Stage }
  | { readonly op: 'percent'; readonly percent: number }
  /** An old app version writes the old column behind flagshift's back. */
  | { readonly op: 'rawOldWrite'; readonly id: number; readonly username: string }
  /** Writes on distinct keys issued at once. */
  | { readonly op: 'parallel'; readonly writes: readonly DataCommand[] }
  /** One batch of the lifecycle backfill (only when the backfill exists). */
  | { readonly op: 'backfill'; readonly batchSize: number };

/** The model of the table and of the flags routing it. */
export class UsersModel {
  readonly rows = new Map<number, PhysicalRow>();
  stage: Stage;
  percent: number;
  readonly stageFlagKey: string;
  /** Whether the sync triggers of `expand` are installed. */
  readonly syncTriggers: boolean;
  /** The key the table's identity gives the next insert without one (it starts at 1000, above the explicit keys). */
  nextId = 1000;

  constructor(stage: Stage, percent: number, stageFlagKey: string, syncTriggers = false) {
    this.stage = stage;
    this.percent = percent;
    this.stageFlagKey = stageFlagKey;
    this.syncTriggers = syncTriggers;
  }

  route(bucketKey: string): ExpectedRoute {
    return expectedRoute(this.stage, this.percent, this.stageFlagKey, bucketKey);
  }

  /**
   * Applies an acknowledged data command to both sides as its stage writes them (and as
   * the sync triggers then adjust them, when installed), and returns what the repository
   * call must return (`'duplicate'`: a unique violation).
   */
  apply(command: DataCommand): 'duplicate' | boolean | User {
    const route = this.route(String(command.id));
    const current = this.rows.get(command.id);
    switch (command.op) {
      case 'insert':
      case 'upsert': {
        if (command.op === 'insert' && current !== undefined) return 'duplicate';
        const set = {
          email: command.email,
          ...(route.writesOld ? { old: command.username } : {}),
          ...(route.writesNew ? { new: command.username } : {}),
        };
        if (current === undefined) this.#insert(command.id, set);
        else this.#update(command.id, set);
        return { id: command.id, username: command.username, email: command.email };
      }
      case 'update': {
        if (current === undefined) return false;
        const username = command.username;
        this.#update(command.id, {
          ...(command.email !== undefined ? { email: command.email } : {}),
          ...(username !== undefined && route.writesOld ? { old: username } : {}),
          ...(username !== undefined && route.writesNew ? { new: username } : {}),
        });
        return true;
      }
      case 'delete':
        return this.rows.delete(command.id);
    }
  }

  /**
   * An INSERT setting `set` (unset columns NULL). The sync trigger fills an unset side
   * from the other: new := forward(old) when new is NULL, old := backward(new) when old is.
   */
  #insert(id: number, set: { email: string; old?: string; new?: string }): void {
    let old = set.old ?? null;
    let fresh = set.new ?? null;
    if (this.syncTriggers) {
      if (fresh === null && old !== null) fresh = old;
      else if (old === null && fresh !== null) old = fresh;
    }
    this.rows.set(id, { email: set.email, old, new: fresh });
  }

  /**
   * An UPDATE setting `set`. The sync trigger copies a side that changed to the other when
   * only one changed (old to new always; new to old only when new differs from forward(old)).
   */
  #update(id: number, set: { email?: string; old?: string; new?: string }): void {
    const before = this.rows.get(id)!;
    let old = set.old ?? before.old;
    let fresh = set.new ?? before.new;
    if (this.syncTriggers) {
      const oldChanged = old !== before.old;
      const newChanged = fresh !== before.new;
      if (oldChanged && !newChanged) fresh = old;
      else if (newChanged && !oldChanged && fresh !== old) old = fresh;
    }
    this.rows.set(id, { email: set.email ?? before.email, old, new: fresh });
  }

  /** What a read of `id` returns when routed by `bucketKey`. */
  read(id: number, bucketKey: string): { id: number; username: string | null; email: string } | undefined {
    const row = this.rows.get(id);
    if (row === undefined) return undefined;
    const route = this.route(bucketKey);
    return { id, username: route.serves === 'old' ? row.old : row.new, email: row.email };
  }

  /** The old app version's upsert: it knows the old column only ({@link rawOldWriteSql}). */
  rawOldWrite(id: number, username: string): void {
    if (this.rows.has(id)) this.#update(id, { old: username });
    else this.#insert(id, { email: LEGACY_EMAIL, old: username });
  }

  /**
   * A backfill pass: new := forward(old) in every row where they differ (NULL included).
   * The sync trigger leaves such an update alone: new then equals forward(old).
   */
  backfill(): void {
    for (const [id, row] of this.rows) if (row.new !== row.old) this.rows.set(id, { ...row, new: row.old });
  }

  /** Ids whose sides differ, ascending. */
  divergent(): number[] {
    return [...this.rows]
      .filter(([, row]) => row.old !== row.new)
      .map(([id]) => id)
      .sort((a, b) => a - b);
  }

  /** Rows whose new side is NULL: `username` is required, so contract would make its column NOT NULL. */
  nullNew(): number {
    let count = 0;
    for (const row of this.rows.values()) if (row.new === null) count++;
    return count;
  }

  /** The table as `SELECT id, user_name, username, email ORDER BY id` returns it. */
  table(): { id: number; user_name: string | null; username: string | null; email: string }[] {
    return [...this.rows]
      .sort(([a], [b]) => a - b)
      .map(([id, row]) => ({ id, user_name: row.old, username: row.new, email: row.email }));
  }
}

// ---- arbitraries ----

const ids = fc.integer({ min: 1, max: 6 });
/** Few distinct values so that `find` and comparisons meet collisions; some awkward ones. */
const names = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('ada', 'bob', 'cy') },
  { weight: 1, arbitrary: fc.constantFrom('', "o'hara", 'ünï ✓', '$1; --', '  ') },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
);
const emails = fc.constantFrom('a@x', 'b@x', 'c@x');
const targetingKeys = fc.option(fc.constantFrom('tenant-a', 'tenant-b', '', 'ü-ß'), { nil: undefined, freq: 3 });
/** Whole and fractional read percentages, with the ends. */
export const percents = fc.oneof(
  fc.constantFrom(0, 100, 50, 10),
  fc.integer({ min: 0, max: 100 }),
  fc.double({ min: 0, max: 100, noNaN: true }).map((p) => Math.round(p * 100) / 100),
);

function withTargeting<T extends object>(command: T, tk: string | undefined): T & { tk?: string } {
  return tk === undefined ? command : { ...command, tk };
}

const insert = fc.record({ op: fc.constant('insert' as const), id: ids, username: names, email: emails });
const upsert = fc.record({ op: fc.constant('upsert' as const), id: ids, username: names, email: emails });
const update = fc.record(
  { op: fc.constant('update' as const), id: ids, username: names, email: emails },
  { requiredKeys: ['op', 'id'] },
);
const remove = fc.record({ op: fc.constant('delete' as const), id: ids });
/** Data commands. */
export const dataCommand: fc.Arbitrary<DataCommand> = fc.oneof(
  { weight: 3, arbitrary: insert },
  { weight: 2, arbitrary: upsert },
  { weight: 3, arbitrary: update },
  { weight: 1, arbitrary: remove },
);
/** Read commands. */
export const readCommand: fc.Arbitrary<ReadCommand> = fc.oneof(
  fc.tuple(ids, targetingKeys).map(([id, tk]) => withTargeting({ op: 'get' as const, id }, tk)),
  fc
    .tuple(fc.array(ids, { minLength: 1, maxLength: 5 }), targetingKeys)
    .map(([list, tk]) => withTargeting({ op: 'getMany' as const, ids: list }, tk)),
  fc
    .tuple(names, targetingKeys)
    .map(([username, tk]) => withTargeting({ op: 'findByUsername' as const, username }, tk)),
  emails.map((email) => ({ op: 'findByEmail' as const, email })),
);
/** Writes on distinct keys, to issue at once. */
const parallel = fc
  .uniqueArray(dataCommand, { minLength: 2, maxLength: 4, selector: (command) => command.id })
  .map((writes) => ({ op: 'parallel' as const, writes }));

const pagesDuringWrites: fc.Arbitrary<PagesDuringWrites> = fc.record({
  op: fc.constant('pagesDuringWrites' as const),
  order: fc.constantFrom('id-desc' as const, 'email-asc' as const),
  limit: fc.integer({ min: 1, max: 2 }),
  writes: fc.array(dataCommand, { minLength: 1, maxLength: 5 }),
});

/** What a generated sequence may contain beyond data and read commands. */
export interface SequenceOptions {
  /** Stages a `stage` command may move to. */
  readonly stages: readonly Stage[];
  /** Include writes of the old column by an old app version. */
  readonly rawOldWrites: boolean;
  /** Include backfill batches. */
  readonly backfill: boolean;
  /** Weigh queries (operators, projections, counts, pages, generated keys) over the other reads. @default false */
  readonly queries?: boolean;
}

/** A command sequence: data, reads, flag changes and, as asked, raw writes and backfill batches. */
export function commands(options: SequenceOptions): fc.Arbitrary<Command[]> {
  const command: fc.Arbitrary<Command>[] = [dataCommand, dataCommand, readCommand, readCommand, queryCommand, parallel];
  if (options.queries) command.push(queryCommand, queryCommand, queryCommand, pagesDuringWrites, pagesDuringWrites);
  command.push(fc.constantFrom(...options.stages).map((stage) => ({ op: 'stage' as const, stage })));
  command.push(percents.map((percent) => ({ op: 'percent' as const, percent })));
  if (options.rawOldWrites) {
    command.push(fc.record({ op: fc.constant('rawOldWrite' as const), id: ids, username: names }));
  }
  if (options.backfill) {
    command.push(fc.integer({ min: 1, max: 4 }).map((batchSize) => ({ op: 'backfill' as const, batchSize })));
  }
  return fc.array(fc.oneof(...command), { minLength: 1, maxLength: 30 });
}

/** Runs per driver: FLAGSHIFT_MODEL_RUNS when set, else `fallback`. */
export function modelRuns(fallback: number): number {
  const configured = Number(process.env['FLAGSHIFT_MODEL_RUNS']);
  return Number.isInteger(configured) && configured > 0 ? configured : fallback;
}

/** fast-check parameters: the run count, and FLAGSHIFT_MODEL_SEED to replay a run. */
export function modelParameters(fallbackRuns: number): fc.Parameters<unknown> {
  const seed = Number(process.env['FLAGSHIFT_MODEL_SEED']);
  return { numRuns: modelRuns(fallbackRuns), ...(Number.isInteger(seed) ? { seed } : {}) };
}
