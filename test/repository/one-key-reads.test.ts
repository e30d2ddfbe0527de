/**
 * `get` of one key takes a shorter way than a read of several keys (no per-plan and per-key
 * records) when the repository has one migration without side tables. It must be the same
 * read: the same statement, the same entity, the same comparison and the same events.
 * `getMany` of one key takes the general way, so the two are compared in every stage.
 */
import {
  createMemoryFlags,
  createRepository,
  type Driver,
  type MetricEvent,
  type MetricsSink,
  STAGES,
  type Stage,
} from 'flagshift';
import { expect, it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import { usersMigration } from '../support/fixtures.js';

/** `driver`, recording the text of every statement it is given. */
function recording(driver: Driver, seen: string[]): Driver {
  return new Proxy(driver, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'query' || property === 'queryThen') {
        return (sql: string, ...rest: unknown[]) => {
          seen.push(sql);
          return (value as (...args: unknown[]) => unknown).call(target, sql, ...rest);
        };
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
}

/** An event with what differs between two reads of the same entity left out, at any depth: the operation and the clock (a latency, a sample's time). */
function comparable(event: MetricEvent): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(event, (key, value: unknown) =>
      key === 'operation' || key === 'milliseconds' || key === 'at' ? undefined : value,
    ),
  );
}

describeDrivers('one-key reads', (getCtx) => {
  const cases: [Stage, number][] = [...STAGES.map((stage): [Stage, number] => [stage, 100]), ['live', 0]];

  it.each(cases)(
    '%s (read percentage %d): get sends, returns and reports what getMany of one key does',
    async (stage, percent) => {
      const ctx = getCtx();
      const { migration } = await usersMigration(ctx);
      await ctx.sql(
        `INSERT INTO ${ctx.schema}.users (id, user_name, username, email) VALUES
         (1, 'ada', 'ada', 'a@x'), (2, 'bob', 'intruder', 'b@x'), (3, 'cy', NULL, 'c@x')`,
      );
      const events: MetricEvent[] = [];
      const metrics: MetricsSink = { record: (event) => events.push(event) };
      const statements: string[] = [];
      const repo = createRepository(migration, {
        driver: recording(ctx.driver, statements),
        flags: createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: percent }),
        metrics,
      });
      await repo.check();
      // The first read waits for the flags and goes the general way; the rest find the decision cached.
      await repo.getMany([404]);
      for (const id of [1, 2, 3, 404]) {
        events.length = 0;
        statements.length = 0;
        const one = await repo.get(id);
        const oneEvents = events.map(comparable);
        const oneStatements = [...statements];
        events.length = 0;
        statements.length = 0;
        const many = await repo.getMany([id]);
        expect(one, `id ${id}`).toEqual(many[0]);
        expect(oneStatements, `id ${id}`).toEqual(statements);
        expect(oneEvents, `id ${id}`).toEqual(events.map(comparable));
        expect(oneEvents.length, `id ${id}`).toBeGreaterThan(0);
      }
    },
  );

  it('a read whose compared side fails is retried without it, as getMany retries', async () => {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx);
    await ctx.sql(`INSERT INTO ${ctx.schema}.users (id, user_name, username, email) VALUES (1, 'ada', 'ada', 'a@x')`);
    const events: MetricEvent[] = [];
    const failing: Driver = new Proxy(ctx.driver, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        if (property === 'query' || property === 'queryThen') {
          return (sql: string, ...rest: unknown[]) => {
            // The new column fails to read, as a missing privilege or a broken cast would.
            if (sql.includes('"username"') && sql.includes('"user_name"')) {
              const error = Object.assign(new Error('permission denied for column username'), { code: '42501' });
              if (property === 'query') return Promise.reject(error);
              const fail = rest[2] as (error: unknown) => unknown;
              return Promise.resolve().then(() => fail(error));
            }
            return (value as (...args: unknown[]) => unknown).call(target, sql, ...rest);
          };
        }
        return (value as (...args: unknown[]) => unknown).bind(target);
      },
    });
    const repo = createRepository(migration, {
      driver: failing,
      flags: createMemoryFlags({ [migration.stageFlagKey]: 'shadow', [migration.percentFlagKey]: 0 }),
      metrics: { record: (event) => events.push(event) },
    });
    await repo.check();
    await repo.getMany([404]);
    events.length = 0;
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    const oneEvents = events.map(comparable);
    events.length = 0;
    expect(await repo.getMany([1])).toEqual([{ id: 1, username: 'ada', email: 'a@x' }]);
    expect(oneEvents).toEqual(events.map(comparable));
    expect(oneEvents).toContainEqual(expect.objectContaining({ type: 'error', side: 'new', code: '42501' }));
    expect(oneEvents.some((event) => event.type === 'comparison')).toBe(false);
  });
});
