import { expect, it } from 'vitest';
import { loadLongTransactions, loadRelationLocks } from '../../src/catalog/activity.js';
import { describeDrivers } from '../support/drivers.js';

// Other sessions only exist on a server: PGlite has one connection.
describeDrivers(
  'catalog activity',
  (getCtx) => {
    it('another session with an open transaction and a lock on a table is seen, with its lock', async () => {
      const ctx = getCtx();
      const s = ctx.schema;
      await ctx.sql(`CREATE TABLE ${s}.items (id int PRIMARY KEY)`);
      const [table] = await ctx.sql<{ oid: unknown }>(`SELECT '${s}.items'::regclass::oid::int8 AS oid`);
      const oid = Number(table!.oid);
      const other = await ctx.pgClient({ application_name: 'flagshift-activity-test' });
      const { rows } = await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = rows[0]!.pid;
      await other.query('BEGIN');
      try {
        await other.query(`LOCK TABLE ${s}.items IN SHARE MODE`);
        // The server's clock has moved past the transaction's start by the time it is read.
        await other.query('SELECT pg_sleep(0.05)');
        const long = await loadLongTransactions(ctx.driver, 0);
        expect(long.find((row) => row.pid === pid)).toMatchObject({
          pid,
          applicationName: 'flagshift-activity-test',
          state: 'idle in transaction',
        });
        expect(long.find((row) => row.pid === pid)!.seconds).toBeGreaterThan(0);
        expect(await loadLongTransactions(ctx.driver, 86_400)).not.toContainEqual(expect.objectContaining({ pid }));
        const locks = await loadRelationLocks(ctx.driver, [oid], 0);
        expect(locks).toContainEqual(expect.objectContaining({ pid, relation: oid, mode: 'ShareLock', granted: true }));
        // A granted lock counts only once its transaction is older than heldSeconds.
        expect(await loadRelationLocks(ctx.driver, [oid], 86_400)).toEqual([]);
      } finally {
        await other.query('ROLLBACK');
      }
    });
  },
  { kinds: ['pg'] },
);
