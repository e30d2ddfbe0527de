/**
 * Runs generated command sequences against a real repository and the {@link UsersModel}
 * side by side, checking after every command that the database, the values returned and
 * the metric events are what the model (the stage contract) says. Every assertion names
 * the invariant it holds.
 */
import {
  createMemoryFlags,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  type MemoryFlags,
  type Migration,
  type Operation,
  type Repository,
  rename,
  type Side,
  type Stage,
} from 'flagshift';
import { expect } from 'vitest';
import { z } from 'zod';
import type { Driver, Queryable } from '../../src/kernel/driver.js';
import { createBackfill } from '../../src/lifecycle/backfill/backfill.js';
import { expand } from '../../src/lifecycle/ddl/expand.js';
import { verify } from '../../src/lifecycle/verify.js';
import { type Command, type DataCommand, type ExpectedRoute, rawOldWriteSql, type User, UsersModel } from './model.js';
import { createEventLog, type EventLog } from './model-events.js';

/** The entity of the model's table. */
export const modelUserEntity = z.object({ id: z.number().int(), username: z.string(), email: z.string() });

/** What the runner needs to know about the database. */
export interface ModelDatabase {
  readonly driver: Driver;
  /** Superuser statements, outside the driver under test. */
  readonly admin: Queryable;
  /** Schema holding the table. */
  readonly schema: string;
}

/** One run: a fresh table, flags, repository and model. */
export interface ModelRun {
  readonly model: UsersModel;
  readonly repo: Repository<User, 'id'>;
  readonly flags: MemoryFlags;
  readonly migration: Migration;
  readonly events: EventLog;
  /** Runs one command and checks every invariant after it. */
  step(command: Command): Promise<void>;
  /** Checks what holds at the end of a sequence: verification agrees with the model. */
  finish(): Promise<void>;
  close(): void;
}

/** How the table is set up for a run. */
export interface ModelSetup {
  readonly stage: Stage;
  readonly percent: number;
  /** Install the sync triggers (lifecycle `expand`) when the table is created. */
  readonly syncTriggers?: boolean;
}

/**
 * Creates the `users` table of the model in `db.schema`, and with `syncTriggers` runs the
 * lifecycle's `expand`, which finds the new column present and adds the sync triggers.
 */
export async function createModelTable(db: ModelDatabase, options: { syncTriggers?: boolean } = {}): Promise<void> {
  await db.admin.query(
    `CREATE TABLE ${db.schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
  );
  if (options.syncTriggers) {
    const report = await expand(db.driver, modelMigration(db.schema) as unknown as Migration, {
      stateSchema: db.schema,
    });
    expect(report.steps.length, 'expand installs the sync triggers').toBeGreaterThan(0);
  }
}

/** The migration the model describes, on `schema.users`. */
export function modelMigration(schema: string) {
  const users = defineTable({ name: `${schema}.users`, key: 'id', entity: modelUserEntity });
  return defineMigration({
    name: 'users-username',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
  });
}

/** Starts a run on an emptied table (created by {@link createModelTable}). */
export async function startModelRun(db: ModelDatabase, initial: ModelSetup): Promise<ModelRun> {
  await db.admin.query(`TRUNCATE ${db.schema}.users`);
  const migration = modelMigration(db.schema);
  const flags = createMemoryFlags({
    [migration.stageFlagKey]: initial.stage,
    [migration.percentFlagKey]: initial.percent,
  });
  const events = createEventLog();
  const repo = createRepository(migration, { driver: db.driver, flags, metrics: events }) as unknown as Repository<
    User,
    'id'
  >;
  const model = new UsersModel(initial.stage, initial.percent, migration.stageFlagKey, initial.syncTriggers ?? false);
  const table = `${db.schema}.users`;

  async function checkTable(after: string): Promise<void> {
    const { rows } = await db.admin.query<{ id: string | number; user_name: string | null; username: string | null }>(
      `SELECT id, user_name, username, email FROM ${table} ORDER BY id`,
    );
    const stored = rows.map((row) => ({ ...row, id: Number(row.id) }));
    expect(
      stored,
      `invariant: each side holds exactly what the acknowledged writes of its stages put there (${after})`,
    ).toEqual(model.table());
    const { rows: differing } = await db.admin.query<{ id: string | number }>(
      `SELECT id FROM ${table} WHERE user_name IS DISTINCT FROM username ORDER BY id`,
    );
    expect(
      differing.map((row) => Number(row.id)),
      `invariant: old and new never diverge where both sides were written (user_name IS DISTINCT FROM username, ${after})`,
    ).toEqual(model.divergent());
  }

  async function data(command: DataCommand): Promise<void> {
    const route = model.route(String(command.id));
    const existed = model.rows.has(command.id);
    const before = events.mark();
    const outcome = await perform(repo, command).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const expected = model.apply(command);
    if (expected === 'duplicate') {
      expect(outcome.ok, `invariant: an insert of an existing key is rejected (${describe(command)})`).toBe(false);
      const error = (outcome as { error: unknown }).error;
      expect(error, 'invariant: a rejected write raises a DriverError with the SQLSTATE').toBeInstanceOf(DriverError);
      expect((error as DriverError).sqlState).toBe('23505');
      return;
    }
    if (!outcome.ok) throw outcome.error;
    expect(outcome.value, `invariant: a write returns what the contract says (${describe(command)})`).toEqual(expected);
    const changed = command.op === 'insert' || command.op === 'upsert' || existed;
    if (changed) {
      expect(
        events.ofType('write', before).map((event) => [event.stage, event.route, event.sides]),
        `invariant: a write is reported once, with the flag's stage, the route and the sides it writes (${describe(command)})`,
      ).toEqual([[model.stage, route.effective, sidesWritten(route)]]);
    }
  }

  async function parallel(writes: readonly DataCommand[]): Promise<void> {
    const outcomes = await Promise.allSettled(writes.map((command) => perform(repo, command)));
    writes.forEach((command, index) => {
      const expected = model.apply(command);
      const outcome = outcomes[index]!;
      if (expected === 'duplicate') {
        expect(outcome.status, `invariant: an insert of an existing key is rejected (${describe(command)})`).toBe(
          'rejected',
        );
        return;
      }
      if (outcome.status === 'rejected') throw outcome.reason;
      expect(
        outcome.value,
        `invariant: a concurrent write returns what the contract says (${describe(command)})`,
      ).toEqual(expected);
    });
  }

  async function read(command: Extract<Command, { op: 'get' | 'getMany' | 'findByUsername' | 'findByEmail' }>) {
    const options = 'tk' in command && command.tk !== undefined ? { context: { targetingKey: command.tk } } : undefined;
    const before = events.mark();
    let expectedValue: unknown;
    let actual: unknown;
    let perEntity: { id: number; bucketKey: string }[] = [];
    let operation: Operation;
    if (command.op === 'get') {
      operation = 'get';
      const bucketKey = command.tk ?? String(command.id);
      expectedValue = model.read(command.id, bucketKey);
      actual = await repo.get(command.id, options);
      if (model.rows.has(command.id)) perEntity = [{ id: command.id, bucketKey }];
    } else if (command.op === 'getMany' || command.op === 'findByEmail') {
      operation = command.op === 'getMany' ? 'getMany' : 'find';
      let keys: number[];
      if (command.op === 'getMany') {
        keys = [...new Set(command.ids)].filter((id) => model.rows.has(id));
        actual = await repo.getMany(command.ids, options);
      } else {
        keys = [...model.rows]
          .filter(([, row]) => row.email === command.email)
          .map(([id]) => id)
          .sort((a, b) => a - b);
        actual = await repo.find({ where: { email: command.email } });
      }
      const tk = command.op === 'getMany' ? command.tk : undefined;
      perEntity = keys.map((id) => ({ id, bucketKey: tk ?? String(id) }));
      expectedValue = perEntity.map(({ id, bucketKey }) => model.read(id, bucketKey));
    } else {
      // A filter on a migrated field runs as a whole on the side chosen by the call's targeting key.
      operation = 'find';
      const route = model.route(command.tk ?? '');
      const side = route.serves;
      const matching = (on: Side) =>
        [...model.rows]
          .filter(([, row]) => (on === 'old' ? row.old : row.new) === command.username)
          .map(([id]) => id)
          .sort((a, b) => a - b);
      const served = matching(side);
      expectedValue = served.map((id) => ({ id, username: command.username, email: model.rows.get(id)!.email }));
      actual = await repo.find({ where: { username: command.username } }, options);
      expect(actual, `invariant: every acknowledged write is read back identically (${describe(command)})`).toEqual(
        expectedValue,
      );
      expect(
        events
          .ofType('read', before)
          .map((event) => [event.stage, event.route, event.served, event.operation, event.count]),
        `invariant: no read is served from a side its stage forbids (${describe(command)})`,
      ).toEqual([[model.stage, route.effective, side, 'find', served.length]]);
      const other = matching(side === 'old' ? 'new' : 'old');
      const comparisons = route.compares ? [sameMembers(served, other)] : [];
      expect(
        events.ofType('comparison', before).map((event) => event.matched),
        `invariant: a shadow query compares the result sets of both sides, and reports a mismatch exactly when they differ (${describe(command)})`,
      ).toEqual(comparisons);
      return;
    }
    expect(actual, `invariant: every acknowledged write is read back identically (${describe(command)})`).toEqual(
      expectedValue,
    );
    const routes = perEntity.map(({ id, bucketKey }) => ({ id, route: model.route(bucketKey) }));
    const tally = new Map<string, number>();
    for (const { route } of routes) {
      const label = `${model.stage}:${route.effective}:${route.serves}`;
      tally.set(label, (tally.get(label) ?? 0) + 1);
    }
    const expectedReads = [...tally].map(([label, count]) => `${label}:${operation}:${count}`).sort();
    expect(
      events
        .ofType('read', before)
        .map((event) => `${event.stage}:${event.route}:${event.served}:${event.operation}:${event.count}`)
        .sort(),
      `invariant: no read is served from a side its stage forbids (${describe(command)})`,
    ).toEqual(expectedReads);
    const expectedComparisons = routes
      .filter(({ route }) => route.compares)
      .map(({ id }) => model.rows.get(id)!.old === model.rows.get(id)!.new);
    expect(
      events.ofType('comparison', before).map((event) => event.matched),
      `invariant: shadow and live reads compare, and report a mismatch exactly when the sides differ (${describe(command)})`,
    ).toEqual(expectedComparisons);
    expect(
      events.ofType('mismatch', before).length,
      `invariant: every mismatch carries a sample (${describe(command)})`,
    ).toBe(expectedComparisons.filter((matched) => !matched).length);
  }

  async function step(command: Command): Promise<void> {
    switch (command.op) {
      case 'insert':
      case 'upsert':
      case 'update':
      case 'delete':
        await data(command);
        break;
      case 'parallel':
        await parallel(command.writes);
        break;
      case 'get':
      case 'getMany':
      case 'findByUsername':
      case 'findByEmail':
        await read(command);
        break;
      case 'stage':
        flags.set(migration.stageFlagKey, command.stage);
        model.stage = command.stage;
        break;
      case 'percent':
        flags.set(migration.percentFlagKey, command.percent);
        model.percent = command.percent;
        break;
      case 'rawOldWrite':
        await db.admin.query(rawOldWriteSql(table), [command.id, command.username]);
        model.rawOldWrite(command.id, command.username);
        break;
      case 'backfill': {
        // One pass in batches of `batchSize` rows: several batches on a table of up to six rows.
        const report = await createBackfill(db.driver, migration as unknown as Migration, {
          stateSchema: db.schema,
          batchSize: command.batchSize,
          minBatchSize: 1,
          maxBatchSize: command.batchSize,
        }).run();
        expect(report.status, 'invariant: a backfill pass runs to the end').toBe('done');
        model.backfill();
        break;
      }
    }
    await checkTable(`after ${describe(command)}`);
  }

  async function finish(): Promise<void> {
    const report = await verify(db.driver, migration as unknown as Migration, { stateSchema: db.schema });
    const divergent = model.divergent();
    const nullNew = model.nullNew();
    expect(
      [report.passed, report.mismatchedRows + report.missingRows, report.nullColumns[0]?.rows ?? 0],
      'invariant: verification finds exactly the rows whose sides differ, and the NULLs contract would refuse',
    ).toEqual([divergent.length === 0 && nullNew === 0, divergent.length, nullNew]);
  }

  return {
    model,
    repo,
    flags,
    migration: migration as unknown as Migration,
    events,
    step,
    finish,
    close: () => repo.close(),
  };
}

function perform(repo: Repository<User, 'id'>, command: DataCommand): Promise<unknown> {
  switch (command.op) {
    case 'insert':
      return repo.insert({ id: command.id, username: command.username, email: command.email });
    case 'upsert':
      return repo.upsert({ id: command.id, username: command.username, email: command.email });
    case 'update': {
      const patch: { username?: string; email?: string } = {};
      if (command.username !== undefined) patch.username = command.username;
      if (command.email !== undefined) patch.email = command.email;
      return repo.update(command.id, patch);
    }
    case 'delete':
      return repo.delete(command.id);
  }
}

function sidesWritten(route: ExpectedRoute): Side[] {
  return [...(route.writesOld ? (['old'] as const) : []), ...(route.writesNew ? (['new'] as const) : [])];
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, index) => id === b[index]);
}

function describe(command: Command): string {
  return JSON.stringify(command);
}
