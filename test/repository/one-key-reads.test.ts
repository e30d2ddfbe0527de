/**
 * `get` of one key takes a shorter way than a read of several keys (no per-plan and per-key
 * records) when the repository has one migration without side tables. It must be the same
 * read: the same statement, the same entity, the same comparison and the same events.
 * `getMany` of one key takes the general way, so the two are compared in every stage.
 */
import {
  type Continuation,
  createMemoryFlags,
  createRepository,
  type Driver,
  type MetricEvent,
  type MetricsSink,
  type Migration,
  STAGES,
  type Stage,
} from 'flagshift';
import { expect, it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import { usersMigration } from '../support/fixtures.js';

/** A driver's statement method, `query` or `queryInto`: the text, then the rest of its arguments. */
type Send = (sql: string, ...rest: unknown[]) => unknown;

/**
 * `driver` with every statement (`query`, and `queryInto` where the driver has one) handed
 * to `send` with the driver's own method; everything else is the driver's.
 */
function intercepted(
  driver: Driver,
  send: (sql: string, rest: unknown[], own: Send, method: 'query' | 'queryInto') => unknown,
): Driver {
  return new Proxy(driver, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const own = (value as Send).bind(target);
      if (property !== 'query' && property !== 'queryInto') return own;
      return (sql: string, ...rest: unknown[]) => send(sql, rest, own, property);
    },
  });
}

/** What a statement that failed with `error` gives: `query` rejects, `queryInto` hands it to its continuation's `failed`. */
function failed(method: 'query' | 'queryInto', rest: unknown[], error: Error): Promise<unknown> {
  if (method === 'query') return Promise.reject(error);
  const next = rest[1] as Continuation<unknown, unknown>;
  return Promise.resolve().then(() => next.failed(error));
}

/** `driver`, recording the text of every statement it is given. */
function recording(driver: Driver, seen: string[]): Driver {
  return intercepted(driver, (sql, rest, own) => {
    seen.push(sql);
    return own(sql, ...rest);
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

/** A repository over `migration` whose statements and metric events are recorded. */
function observed(driver: Driver, migration: Migration, stage: Stage, percent = 100) {
  const events: MetricEvent[] = [];
  const statements: string[] = [];
  const repo = createRepository(migration, {
    driver: recording(driver, statements),
    flags: createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: percent }),
    metrics: { record: (event) => events.push(event) },
  });
  /** What the repository sent and reported since the last call. */
  const taken = () => {
    const out = { statements: [...statements], events: events.map(comparable) };
    statements.length = 0;
    events.length = 0;
    return out;
  };
  return { repo, taken };
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
    const failing = intercepted(ctx.driver, (sql, rest, own, method) => {
      // The new column fails to read, as a missing privilege or a broken cast would.
      if (!(sql.includes('"username"') && sql.includes('"user_name"'))) return own(sql, ...rest);
      return failed(method, rest, Object.assign(new Error('permission denied for column username'), { code: '42501' }));
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

  it('a get whose decision is not cached yet (a first read) sends, returns and reports what getMany does', async () => {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx);
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.users (id, user_name, username, email) VALUES (2, 'bob', 'intruder', 'b@x')`,
    );
    for (const stage of ['shadow', 'live'] as const) {
      const one = observed(ctx.driver, migration, stage);
      const many = observed(ctx.driver, migration, stage);
      await one.repo.check();
      await many.repo.check();
      one.taken();
      many.taken();
      expect(await one.repo.get(2), stage).toEqual((await many.repo.getMany([2]))[0]);
      const [sent, reported] = [one.taken(), many.taken()];
      expect(sent, stage).toEqual(reported);
      expect(
        sent.events.some((event) => event['type'] === 'mismatch'),
        stage,
      ).toBe(true);
    }
  });

  it('with one read in N compared, get samples the same reads as getMany', async () => {
    const ctx = getCtx();
    const { migration: sampled } = await usersMigration(ctx, { compare: { sampleOneIn: 3 } });
    await ctx.sql(`INSERT INTO ${ctx.schema}.users (id, user_name, username, email) VALUES (1, 'ada', 'Ada', 'a@x')`);
    const one = observed(ctx.driver, sampled, 'shadow');
    const many = observed(ctx.driver, sampled, 'shadow');
    for (const side of [one, many]) {
      await side.repo.check();
      await side.repo.getMany([404]);
      side.taken();
    }
    for (let read = 0; read < 7; read++) {
      await one.repo.get(1);
      await many.repo.getMany([1]);
    }
    const [sent, reported] = [one.taken(), many.taken()];
    expect(sent).toEqual(reported);
    expect(sent.events.filter((event) => event['type'] === 'comparison')).toHaveLength(2);
  });

  it('a get whose first look at the columns fails rejects, and leaves no rejection unhandled', async () => {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx);
    const down = intercepted(ctx.driver, (_sql, rest, _own, method) =>
      failed(method, rest, new Error('connection refused')),
    );
    const unhandled: unknown[] = [];
    const listen = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listen);
    try {
      const repo = createRepository(migration, {
        driver: down,
        flags: createMemoryFlags({ [migration.stageFlagKey]: 'shadow' }),
      });
      await expect(repo.get(1)).rejects.toThrow(/connection refused/);
      await expect(repo.get(1)).rejects.toThrow(/connection refused/);
      // Unhandled rejections are reported after the microtask queue drains.
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', listen);
    }
    expect(unhandled).toEqual([]);
  });
});
