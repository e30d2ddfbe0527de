/**
 * Kysely (PostgresDialect) over a routed PGlite: the rename ramps through every stage
 * while Kysely's queries stay as they are.
 *
 * Run: npx tsx --conditions=flagshift-source examples/orm-kysely.ts
 */
import { Kysely, PostgresDialect } from 'kysely';
import { rampRename } from './support/orm-ramp.js';

interface Database {
  users: { id: number; username: string | null; email: string | null };
}

await rampRename('Kysely', (pool) => {
  // The routed database also answers as a pg pool: connect() / release().
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pool as never }) });
  return {
    insert: async (id, username) => {
      await db
        .insertInto('users')
        .values({ id, username, email: `${username}@example.com` })
        .execute();
    },
    update: async (id, username) => {
      await db.updateTable('users').set({ username }).where('id', '=', id).execute();
    },
    read: async (id) =>
      (await db.selectFrom('users').select('username').where('id', '=', id).executeTakeFirst())?.username,
  };
});
