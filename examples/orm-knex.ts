/**
 * Knex (3.3+, `connectionPool`) over a routed PGlite: the rename ramps through every stage
 * while Knex's queries stay as they are.
 *
 * Run: npx tsx --conditions=flagshift-source examples/orm-knex.ts
 */
import knex from 'knex';
import { rampRename } from './support/orm-ramp.js';

await rampRename('Knex', (db) => {
  // The routed database answers as the pg pool Knex's pg client calls.
  const k = knex({ client: 'pg', connectionPool: db });
  return {
    insert: async (id, username) => {
      await k('users').insert({ id, username, email: `${username}@example.com` });
    },
    update: async (id, username) => {
      await k('users').where({ id }).update({ username });
    },
    read: async (id) =>
      ((await k('users').select('username').where({ id }).first()) as { username: string | null } | undefined)
        ?.username,
  };
});
