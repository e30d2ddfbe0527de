import { ConfigurationError } from 'flagshift';
import { expect, it } from 'vitest';
import {
  backfillStatus,
  ensureStateTables,
  lastVerification,
  lastWritePathChange,
  listEvents,
  recordEvent,
  recordVerification,
} from '../../../src/lifecycle/state/index.js';
import { describeDrivers } from '../../support/drivers.js';

describeDrivers('lifecycle state', (getCtx) => {
  it('ensureStateTables: idempotent, and safe when many callers race', async () => {
    const ctx = getCtx();
    const schema = `${ctx.schema}_state`;
    try {
      // On the real server these run on separate connections of the pool, really at once.
      await Promise.all(Array.from({ length: 6 }, () => ensureStateTables(ctx.driver, schema)));
      await ensureStateTables(ctx.driver, schema);
      const tables = await ctx.sql<{ tablename: string }>(
        'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
        [schema],
      );
      expect(tables.map((row) => row.tablename)).toEqual([
        'backfill_checkpoints',
        'backfill_ranges',
        'events',
        'verifications',
      ]);
    } finally {
      await ctx.sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  it('events: recorded in order with their details; unknown kinds are rejected', async () => {
    const ctx = getCtx();
    await recordEvent(ctx.driver, 'm1', 'expand', { statements: 3 }, ctx.schema);
    await recordEvent(ctx.driver, 'm2', 'stage', { stage: 'live' }, ctx.schema);
    await recordEvent(ctx.driver, 'm1', 'force', { reason: 'operator said so', by: 'ops' }, ctx.schema);
    const events = await listEvents(ctx.driver, 'm1', ctx.schema);
    expect(events.map((event) => [event.kind, event.details])).toEqual([
      ['expand', { statements: 3 }],
      ['force', { reason: 'operator said so', by: 'ops' }],
    ]);
    expect(events[0]!.at).toBeInstanceOf(Date);
    await expect(recordEvent(ctx.driver, 'm1', 'bogus' as never, {}, ctx.schema)).rejects.toThrow(ConfigurationError);
  });

  it('lastVerification: the latest result, or undefined before any', async () => {
    const ctx = getCtx();
    expect(await lastVerification(ctx.driver, 'm', ctx.schema)).toBeUndefined();
    await recordVerification(
      ctx.driver,
      'm',
      { passed: false, checkedRows: 10, mismatchedRows: 2, missingRows: 1 },
      ctx.schema,
    );
    const at = await recordVerification(
      ctx.driver,
      'm',
      { passed: true, checkedRows: 12, mismatchedRows: 0, missingRows: 0 },
      ctx.schema,
    );
    expect(await lastVerification(ctx.driver, 'm', ctx.schema)).toEqual({
      passed: true,
      at,
      // Recorded without a start: it counts from when it was recorded.
      startedAt: at,
      checkedRows: 12,
      mismatchedRows: 0,
      missingRows: 0,
    });
    expect(await lastVerification(ctx.driver, 'other', ctx.schema)).toBeUndefined();
  });

  it('lastWritePathChange: the latest expand, contract or stage event; backfill and verify do not count', async () => {
    const ctx = getCtx();
    expect(await lastWritePathChange(ctx.driver, 'm', ctx.schema)).toBeUndefined();
    await recordEvent(ctx.driver, 'm', 'expand', {}, ctx.schema);
    const expandAt = (await listEvents(ctx.driver, 'm', ctx.schema))[0]!.at;
    await recordEvent(ctx.driver, 'm', 'backfill', { action: 'finished' }, ctx.schema);
    await recordEvent(ctx.driver, 'm', 'verify', { passed: true }, ctx.schema);
    expect(await lastWritePathChange(ctx.driver, 'm', ctx.schema)).toEqual(expandAt);
    await recordEvent(ctx.driver, 'm', 'stage', { stage: 'shadow' }, ctx.schema);
    const events = await listEvents(ctx.driver, 'm', ctx.schema);
    const stageAt = events.at(-1)!.at;
    expect(await lastWritePathChange(ctx.driver, 'm', ctx.schema)).toEqual(stageAt);
    // A ramp within live writes both sides as before: it doesn't count.
    await recordEvent(ctx.driver, 'm', 'stage', { stage: 'live', percent: 50, writePathChanged: false }, ctx.schema);
    expect(await lastWritePathChange(ctx.driver, 'm', ctx.schema)).toEqual(stageAt);
  });

  it('backfillStatus: undefined before any backfill', async () => {
    const ctx = getCtx();
    expect(await backfillStatus(ctx.driver, 'm', ctx.schema)).toBeUndefined();
  });

  it('an application table where a state table belongs is a clear configuration error', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.events (id int PRIMARY KEY, payload text)`);
    await expect(ensureStateTables(ctx.driver, ctx.schema)).rejects.toThrow(
      /table "t_[0-9a-f]+\.events" exists but is not flagshift's \(it has no column "migration"\)/,
    );
  });

  it('reads never create the state tables', async () => {
    const ctx = getCtx();
    const schema = `${ctx.schema}_none`;
    expect(await lastVerification(ctx.driver, 'm', schema)).toBeUndefined();
    expect(await lastWritePathChange(ctx.driver, 'm', schema)).toBeUndefined();
    expect(await backfillStatus(ctx.driver, 'm', schema)).toBeUndefined();
    expect(await listEvents(ctx.driver, 'm', schema)).toEqual([]);
    expect(await ctx.sql('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).toEqual([]);
  });

  it('a state schema that is not a plain identifier is a configuration error', async () => {
    const ctx = getCtx();
    await expect(ensureStateTables(ctx.driver, 'x"; DROP TABLE users; --')).rejects.toThrow(
      /option "stateSchema": .* may contain only/,
    );
  });
});
