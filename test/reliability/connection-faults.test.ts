/**
 * Connections killed with pg_terminate_backend at random moments while writers dual-write
 * through a pg Pool, on a real server. Every write either happened on both sides or on
 * neither, and every write that did not happen raised an error to its caller: the final
 * table holds, for every key, the last acknowledged write or a later one in doubt.
 */
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  type Migration,
  moveColumn,
  type Repository,
  rename,
  type Stage,
} from 'flagshift';
import { createPgDriver } from 'flagshift/pg';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { WriteLedger } from '../support/model-ledger.js';

const WRITERS = 6;
const KEYS_PER_WRITER = 4;
const TRAFFIC_MS = 2_500;
const DUAL_STAGES: readonly Stage[] = ['dualwrite', 'shadow', 'live', 'rampdown'];

interface Row {
  readonly value: string;
  readonly email: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** Terminates a random backend of `applicationName` every few milliseconds until `stop()`. */
async function killer(ctx: DriverContext, applicationName: string, stop: () => boolean): Promise<number> {
  const admin = ctx.pgPool({ max: 1, application_name: 'flagshift-killer' });
  let kills = 0;
  while (!stop()) {
    await sleep(2 + Math.random() * 25);
    const { rows } = await admin.query<{ pid: number; state: string }>(
      'SELECT pid, state FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    // Mostly busy backends: a kill mid-statement or mid-transaction is what can tear a write.
    const busy = rows.filter((row) => row.state !== 'idle');
    const victim = busy.length > 0 && Math.random() < 0.85 ? pick(busy) : rows.length > 0 ? pick(rows) : undefined;
    if (victim === undefined) continue;
    await admin.query('SELECT pg_terminate_backend($1)', [victim.pid]);
    kills++;
  }
  return kills;
}

type Entity = { id: number; email: string } & Record<string, unknown>;

/**
 * Runs writers (each owning its keys) and a stage flipper while `killer` runs; returns the
 * ledger and the errors the writers saw.
 */
async function traffic(
  repo: Repository<Entity, 'id'>,
  field: string,
  setStage: (stage: Stage) => void,
  deadline: number,
): Promise<{ ledger: WriteLedger<Row>; errors: unknown[] }> {
  const ledger = new WriteLedger<Row>((row) => JSON.stringify([row.value, row.email]));
  const errors: unknown[] = [];
  const toEntity = (id: number, row: Row): Entity => ({ id, email: row.email, [field]: row.value });
  const flipper = (async () => {
    while (Date.now() < deadline) {
      await sleep(100 + Math.random() * 200);
      setStage(pick(DUAL_STAGES));
    }
  })();
  const writer = async (w: number) => {
    let seq = 0;
    while (Date.now() < deadline) {
      const id = w * 100 + Math.floor(Math.random() * KEYS_PER_WRITER);
      const key = String(id);
      const row: Row = { value: `w${w}-${seq++}`, email: `${seq}@w${w}` };
      const roll = Math.random();
      try {
        if (roll < 0.2) {
          await repo.insert(toEntity(id, row));
          ledger.acknowledged(key, { op: 'insert', entity: row });
        } else if (roll < 0.45) {
          await repo.upsert(toEntity(id, row));
          ledger.acknowledged(key, { op: 'upsert', entity: row });
        } else if (roll < 0.7) {
          const found = await repo.update(id, { [field]: row.value } as Partial<Entity>);
          ledger.acknowledged(key, { op: 'update', patch: { value: row.value }, found });
        } else if (roll < 0.8) {
          const found = await repo.delete(id);
          ledger.acknowledged(key, { op: 'delete', found });
        } else {
          const entity = await repo.get(id);
          ledger.read(key, entity === undefined ? undefined : { value: entity[field] as string, email: entity.email });
        }
      } catch (error) {
        errors.push(error);
        // A duplicate insert is a rejected write too: it did not happen, and the caller knows.
        if (roll < 0.2) ledger.failed(key, { op: 'insert', entity: row });
        else if (roll < 0.45) ledger.failed(key, { op: 'upsert', entity: row });
        else if (roll < 0.7) ledger.failed(key, { op: 'update', patch: { value: row.value } });
        else if (roll < 0.8) ledger.failed(key, { op: 'delete' });
      }
    }
  };
  await Promise.all([flipper, ...Array.from({ length: WRITERS }, (_, w) => writer(w + 1))]);
  return { ledger, errors };
}

function expectNoViolations(ledger: WriteLedger<Row>): void {
  expect(
    ledger.violations.slice(0, 5),
    `invariant: ${ledger.violations[0]?.invariant ?? 'none'} (${ledger.violations.length} violations)`,
  ).toEqual([]);
}

function expectErrorsAreDriverErrors(errors: readonly unknown[]): void {
  const unexpected = errors.filter((error) => !(error instanceof DriverError));
  expect(
    unexpected.slice(0, 3).map(String),
    'invariant: a write that failed on a killed connection raises a DriverError to its caller',
  ).toEqual([]);
}

describeDrivers(
  'faults: connections killed during dual writes',
  (getCtx) => {
    async function setup(ctx: DriverContext, migration: Migration) {
      const applicationName = `victim-${ctx.schema}`;
      const pool = ctx.pgPool({ max: 6, application_name: applicationName, connectionTimeoutMillis: 5_000 });
      const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite', [migration.percentFlagKey]: 50 });
      const metrics = createMemoryMetrics();
      const repo = createRepository(migration, {
        driver: createPgDriver(pool),
        flags,
        metrics,
      }) as unknown as Repository<Entity, 'id'>;
      await repo.check();
      const setStage = (stage: Stage) => flags.set(migration.stageFlagKey, stage);
      return { applicationName, repo, setStage, metrics };
    }

    it('same row: every write happened on both sides or on neither, and each one that did not raised an error', async () => {
      const ctx = getCtx();
      await ctx.sql(
        `CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
      );
      const users = defineTable({
        name: `${ctx.schema}.users`,
        key: 'id',
        entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
      });
      const migration = defineMigration({
        name: 'users-username',
        table: users,
        mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
        defaultStage: 'dualwrite',
      });
      const { applicationName, repo, setStage, metrics } = await setup(ctx, migration as unknown as Migration);
      let stopped = false;
      const kills = killer(ctx, applicationName, () => stopped);
      const { ledger, errors } = await traffic(repo, 'username', setStage, Date.now() + TRAFFIC_MS);
      stopped = true;
      const killed = await kills;

      const rows = await ctx.sql<{ id: string; user_name: string | null; username: string | null; email: string }>(
        `SELECT id, user_name, username, email FROM ${ctx.schema}.users ORDER BY id`,
      );
      const torn = rows.filter((row) => row.user_name !== row.username);
      expect(
        torn,
        'invariant: every write happened on both sides or on neither (user_name IS DISTINCT FROM username)',
      ).toEqual([]);
      const byId = new Map(rows.map((row) => [String(Number(row.id)), row]));
      for (const key of ledger.keys()) {
        const row = byId.get(key);
        ledger.final(key, row === undefined ? undefined : { value: row.username!, email: row.email });
      }
      expectNoViolations(ledger);
      expectErrorsAreDriverErrors(errors);
      // The run proves something only if kills really hit writes and writes really got through.
      expect(killed, 'connections were killed').toBeGreaterThan(10);
      expect(ledger.counts.failed, 'some writes failed on killed connections').toBeGreaterThan(0);
      expect(ledger.counts.acknowledged, 'most writes got through').toBeGreaterThan(ledger.counts.failed);
      expect(metrics.snapshot().totals.mismatches, 'invariant: shadow reads under faults find no mismatch').toBe(0);
      // A connection killed just before the kills stopped may still sit idle in the pool,
      // its termination not yet read: the first statement on it fails, then it is gone.
      await retryOnLostConnection(() => repo.upsert({ id: 1, username: 'after', email: 'a@x' }));
      expect(
        await retryOnLostConnection(() => repo.get(1)),
        'invariant: the pool recovers once the kills stop',
      ).toEqual({
        id: 1,
        username: 'after',
        email: 'a@x',
      });
    });

    it('cross table: the main and side rows of every dual write committed together or not at all', async () => {
      const ctx = getCtx();
      await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, bio text, email text NOT NULL)`);
      // No foreign key: a delete that removed one row but not the other would show as an orphan.
      await ctx.sql(`CREATE TABLE ${ctx.schema}.user_profiles (user_id bigint PRIMARY KEY, bio text)`);
      const users = defineTable({
        name: `${ctx.schema}.users`,
        key: 'id',
        entity: z.object({ id: z.number().int(), bio: z.string(), email: z.string() }),
      });
      const migration = defineMigration({
        name: 'users-bio',
        table: users,
        mappings: [
          moveColumn({
            field: 'bio',
            from: 'bio',
            to: { table: `${ctx.schema}.user_profiles`, column: 'bio', key: ['user_id'] },
            type: 'text',
          }),
        ],
        defaultStage: 'dualwrite',
      });
      const { applicationName, repo, setStage, metrics } = await setup(ctx, migration as unknown as Migration);
      let stopped = false;
      const kills = killer(ctx, applicationName, () => stopped);
      const { ledger, errors } = await traffic(repo, 'bio', setStage, Date.now() + TRAFFIC_MS);
      stopped = true;
      const killed = await kills;

      const rows = await ctx.sql<{
        id: string | null;
        user_id: string | null;
        bio: string | null;
        side_bio: string | null;
        email: string | null;
      }>(
        `SELECT u.id, p.user_id, u.bio, p.bio AS side_bio, u.email
           FROM ${ctx.schema}.users u FULL JOIN ${ctx.schema}.user_profiles p ON p.user_id = u.id ORDER BY coalesce(u.id, p.user_id)`,
      );
      const torn = rows.filter((row) => row.id === null || row.user_id === null || row.bio !== row.side_bio);
      expect(
        torn,
        'invariant: every cross-table write committed on both tables or on neither (no orphan, no missing or differing side row)',
      ).toEqual([]);
      const byId = new Map(rows.map((row) => [String(Number(row.id)), row]));
      for (const key of ledger.keys()) {
        const row = byId.get(key);
        ledger.final(key, row === undefined ? undefined : { value: row.bio!, email: row.email! });
      }
      expectNoViolations(ledger);
      expectErrorsAreDriverErrors(errors);
      expect(killed, 'connections were killed').toBeGreaterThan(10);
      expect(ledger.counts.failed, 'some writes failed on killed connections').toBeGreaterThan(0);
      expect(ledger.counts.acknowledged, 'most writes got through').toBeGreaterThan(ledger.counts.failed);
      expect(metrics.snapshot().totals.mismatches, 'invariant: shadow reads under faults find no mismatch').toBe(0);
    });
  },
  { kinds: ['pg'] },
);

/** Runs `fn`, again after a connection lost to an earlier kill (57P01, or a dead socket), at most 8 times. */
async function retryOnLostConnection<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const code = (error as { sqlState?: string }).sqlState;
      if (attempt >= 8 || (code !== undefined && code !== '57P01')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
