/**
 * A batch goes to the server in one round trip with its lease's renewal (where the driver
 * can), so it can't read what the renewal found before it runs: it checks the range
 * itself, and writes nothing unless the range is as its worker left it.
 */
import { expect, it } from 'vitest';
import type { Driver, QueryResult, Statement } from '../../../src/kernel/index.js';
import { runPipeline } from '../../../src/kernel/index.js';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';
import { createItems, itemsMigration, updateCounts } from '../fixtures/data.js';

/** `driver`, with `around` called in place of each pipeline (its index counting from 0). */
function aroundPipelines(
  driver: Driver,
  around: (index: number, send: () => Promise<QueryResult[]>) => Promise<QueryResult[]>,
): Driver {
  let index = 0;
  return {
    name: driver.name,
    supportsConcurrentQueries: driver.supportsConcurrentQueries,
    query: (sql, params) => driver.query(sql, params),
    transaction: (fn) => driver.transaction(fn),
    session: (fn) => driver.session(fn),
    inTransaction: () => driver.inTransaction?.(),
    pipeline: (statements: readonly Statement[]) => around(index++, () => runPipeline(driver, statements)),
  };
}

/** Runs a backfill of `table` in batches of 40 through `driver`; its report and the types of its events. */
async function backfillItems(driver: Driver, table: string, schema: string) {
  const events: string[] = [];
  const report = await createBackfill(driver, itemsMigration(table), {
    stateSchema: schema,
    batchSize: 40,
    minBatchSize: 40,
    maxBatchSize: 40,
    onEvent: (event) => events.push(event.type),
  }).run();
  return { report, events };
}

/** Every row of `table` filled, and the ranges counting each of its 250 rows once, in 7 batches. */
async function expectFilledOnce(ctx: DriverContext, table: string): Promise<void> {
  const [ranges] = await ctx.sql<{ rows_done: string; batches: number }>(
    `SELECT sum(rows_done)::text AS rows_done, sum(batches)::int AS batches FROM ${ctx.schema}.backfill_ranges`,
  );
  expect(ranges).toEqual({ rows_done: '250', batches: 7 });
  expect(await ctx.sql(`SELECT id FROM ${table} WHERE new_name IS DISTINCT FROM old_name`)).toEqual([]);
}

describeDrivers('backfill batches', (getCtx) => {
  // The range's first batch (no cursor yet) and a later one.
  it.each([0, 2])(
    'batch %i, whose answer is lost after it committed: the retry goes on from the range, counting no row twice',
    async (lost) => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 250);
      const driver = aroundPipelines(ctx.driver, async (index, send) => {
        const results = await send();
        if (index === lost) throw new Error('Connection terminated unexpectedly');
        return results;
      });
      const { report, events } = await backfillItems(driver, table, ctx.schema);
      expect(events).toContain('backfill-retry');
      expect(report).toMatchObject({ status: 'done', totalRowsDone: 250 });
      await expectFilledOnce(ctx, table);
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 250 });
    },
  );

  it('a range taken over between batches: the next batch writes nothing, and the worker lets it go', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 250);
    const filled = async () =>
      Number((await ctx.sql<{ n: string }>(`SELECT count(new_name)::text AS n FROM ${table}`))[0]!.n);
    let during: { before: number; after: number } | undefined;
    const driver = aroundPipelines(ctx.driver, async (index, send) => {
      if (index !== 2) return send();
      // Another worker took the range over, and its own lease has lapsed since.
      await ctx.sql(
        `UPDATE ${ctx.schema}.backfill_ranges SET owner = 'other', lease_until = clock_timestamp() - interval '1 second'`,
      );
      const before = await filled();
      const results = await send();
      during = { before, after: await filled() };
      return results;
    });
    const { report, events } = await backfillItems(driver, table, ctx.schema);
    expect(during).toEqual({ before: 80, after: 80 });
    expect(events).toContain('backfill-range-lost');
    expect(report).toMatchObject({ status: 'done', totalRowsDone: 250 });
    await expectFilledOnce(ctx, table);
  });
});
