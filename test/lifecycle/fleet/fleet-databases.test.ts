/**
 * The fleet over several databases of the real server (one per shard): each member keeps
 * its state in its own database, a shard that fails stops only itself, and the next run
 * takes it up from where it failed once it is fixed.
 */
import { randomBytes } from 'node:crypto';
import { createPgDriver } from 'flagshift/pg';
import type pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { type FleetMember, fleetStatus, runFleet } from '../../../src/lifecycle/fleet/index.js';
import { describeDrivers } from '../../support/drivers.js';
import { usersUsername } from './fixtures.js';

const migration = usersUsername;

describeDrivers(
  'fleet of databases',
  (getCtx) => {
    const databases: string[] = [];

    afterEach(async () => {
      for (const database of databases.splice(0)) {
        await getCtx().sql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      }
    });

    it('each shard runs in its own database; a failing shard stops only itself and resumes once fixed', async () => {
      const ctx = getCtx();
      const shards: Record<string, number | undefined> = { shard1: 150, shard2: undefined, shard3: 90 };
      const members: FleetMember[] = [];
      const pools = new Map<string, pg.Pool>();
      for (const [shard, rows] of Object.entries(shards)) {
        const database = `fleet_${randomBytes(4).toString('hex')}_${shard}`;
        databases.push(database);
        await ctx.sql(`CREATE DATABASE ${database}`);
        const url = new URL(ctx.connectionString!);
        url.pathname = `/${database}`;
        const pool = ctx.pgPool({ connectionString: url.toString(), max: 3 });
        pools.set(shard, pool);
        if (rows !== undefined) {
          await pool.query('CREATE TABLE public.users (id int PRIMARY KEY, user_name text)');
          await pool.query(`INSERT INTO public.users SELECT g, 'user-' || g FROM generate_series(1, $1::int) g`, [
            rows,
          ]);
        }
        members.push({ name: shard, driver: createPgDriver(pool) });
      }

      const first = await runFleet(migration, { members, concurrency: 2, backfill: { pauseRatio: 0 } });
      expect(first.ok).toBe(false);
      expect(first.members.map((m) => [m.member, m.state, m.next])).toEqual([
        ['shard1', 'ready', 'contract'],
        ['shard2', 'failed', 'expand'],
        ['shard3', 'ready', 'contract'],
      ]);
      expect(first.members[1]!.reason).toMatch(/users/);
      for (const shard of ['shard1', 'shard3']) {
        const { rows } = await pools
          .get(shard)!
          .query('SELECT count(*)::int AS n FROM flagshift.verifications WHERE migration = $1 AND passed', [
            migration.name,
          ]);
        expect(rows[0].n).toBe(1);
      }

      // The operator fixes the shard; the next run leaves the others as they are and takes it up.
      await pools.get('shard2')!.query('CREATE TABLE public.users (id int PRIMARY KEY, user_name text)');
      await pools.get('shard2')!.query(`INSERT INTO public.users SELECT g, 'u' || g FROM generate_series(1, 60) g`);
      const second = await runFleet(migration, { members, concurrency: 2, backfill: { pauseRatio: 0 } });
      expect(second.ok).toBe(true);
      const status = await fleetStatus(migration, { members });
      expect(status.members.map((m) => [m.member, m.completed.length, m.state])).toEqual([
        ['shard1', 3, 'ready'],
        ['shard2', 3, 'ready'],
        ['shard3', 3, 'ready'],
      ]);
      const { rows } = await pools
        .get('shard1')!
        .query('SELECT count(*)::int AS n FROM flagshift.verifications WHERE migration = $1', [migration.name]);
      expect(rows[0].n).toBe(1);
      const unfilled = await pools
        .get('shard2')!
        .query('SELECT count(*)::int AS n FROM public.users WHERE username IS DISTINCT FROM user_name');
      expect(unfilled.rows[0].n).toBe(0);
    });
  },
  { kinds: ['pg'] },
);
