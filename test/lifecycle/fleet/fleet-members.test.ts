/**
 * The fleet's options and members, without a database: a migration bound to a tenant's
 * schema, the defaults each member gets, and every refusal before anything runs.
 */
import { ConfigurationError, type Driver, defineMigration, defineTable, moveColumn, rename } from 'flagshift';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveFleet } from '../../../src/lifecycle/fleet/fleet-members.js';
import { migrationInSchema } from '../../../src/lifecycle/fleet/index.js';
import { usersUsername } from './fixtures.js';

/** A driver nothing is run on: these checks happen before the first statement. */
function driver(): Driver {
  return {
    query: () => Promise.reject(new Error('no statement runs while options are checked')),
  } as unknown as Driver;
}

describe('migrationInSchema', () => {
  it('binds the main table and the side tables to the schema, keeping name, flags and columns', () => {
    const users = defineTable({
      name: 'public.users',
      key: 'id',
      entity: z.object({ id: z.number().int(), username: z.string(), bio: z.string().nullable() }),
      columns: { id: { column: 'user_id', type: 'bigint' } },
    });
    const migration = defineMigration({
      name: 'users-profile',
      table: users,
      mappings: [
        rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' }),
        moveColumn({
          field: 'bio',
          from: 'bio',
          to: { table: 'public.user_profiles', column: 'bio', key: ['user_id'] },
        }),
      ],
      defaultStage: 'off',
      flags: { stage: 'custom.stage', defaultPercent: 5 },
      compare: { sampleOneIn: 3 },
    });
    const bound = migrationInSchema(migration, 'acme');
    expect(bound.table.table.quoted).toBe('"acme"."users"');
    expect(bound.sideTables.map((side) => side.table.quoted)).toEqual(['"acme"."user_profiles"']);
    expect(bound.table.columns['id']).toMatchObject({ name: 'user_id', type: 'bigint' });
    expect([bound.name, bound.stageFlagKey, bound.percentFlagKey]).toEqual([
      migration.name,
      'custom.stage',
      migration.percentFlagKey,
    ]);
    expect([bound.defaultStage, bound.defaultPercent, bound.sampleOneIn]).toEqual(['off', 5, 3]);
    expect(migration.table.table.quoted).toBe('"public"."users"');
  });

  it('refuses a schema that is not a plain identifier', () => {
    expect(() => migrationInSchema(usersUsername, 'acme"; DROP TABLE x; --')).toThrow(ConfigurationError);
  });
});

describe('fleet options', () => {
  it('defaults: the first member is the canary; tenants keep state in flagshift_<schema> and are targeted by tenant', () => {
    const shared = driver();
    const fleet = resolveFleet(usersUsername, {
      members: [
        { name: 'eu', driver: driver() },
        { name: 'acme', driver: shared, schema: 'acme' },
        { name: 'globex', driver: shared, schema: 'globex', context: { tenant: 'globex', plan: 'gold' } },
      ],
    });
    expect(fleet.canary.name).toBe('eu');
    expect([fleet.concurrency, fleet.through]).toEqual([4, 'verify']);
    expect(fleet.members.map((m) => [m.name, m.stateSchema, m.context, m.migration.table.table.display])).toEqual([
      ['eu', 'flagshift', { shard: 'eu' }, 'users'],
      ['acme', 'flagshift_acme', { tenant: 'acme' }, 'acme.users'],
      ['globex', 'flagshift_globex', { tenant: 'globex', plan: 'gold' }, 'globex.users'],
    ]);
  });

  it.each([
    ['no members', { members: [] }, /option "members" must be a non-empty list/],
    [
      'a name given twice',
      {
        members: [
          { name: 'a', driver: driver() },
          { name: 'a', driver: driver() },
        ],
      },
      /member name "a" is given twice/,
    ],
    [
      'two members sharing a driver and a state schema',
      (() => {
        const d = driver();
        return {
          members: [
            { name: 'a', driver: d },
            { name: 'b', driver: d },
          ],
        };
      })(),
      /members "a" and "b" share the driver and the state schema "flagshift"/,
    ],
    ['an unknown canary', { members: [{ name: 'a', driver: driver() }], canary: 'z' }, /"canary" names no member: "z"/],
    [
      'contract without flags',
      { members: [{ name: 'a', driver: driver() }], through: 'contract' },
      /through "contract" needs option "flags"/,
    ],
    ['a bad concurrency', { members: [{ name: 'a', driver: driver() }], concurrency: 0 }, /"concurrency" must be/],
    [
      'a hostile schema',
      { members: [{ name: 'a', driver: driver(), schema: 'a b' }] },
      /"members.0.schema" must be a plain identifier/,
    ],
    [
      'an unknown option',
      { members: [{ name: 'a', driver: driver() }], parallel: 3 },
      /"parallel" is not a known option/,
    ],
  ])('refuses %s', (_what, options, message) => {
    expect(() => resolveFleet(usersUsername, options as never)).toThrow(message);
  });
});
