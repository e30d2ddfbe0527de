/**
 * Drizzle (drizzle-orm/pglite) over a routed PGlite: the rename ramps through every
 * stage while Drizzle's queries stay as they are.
 *
 * Run: npx tsx --conditions=flagshift-source examples/orm-drizzle.ts
 */
import { eq } from 'drizzle-orm';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/pglite';
import { rampRename } from './support/orm-ramp.js';

const users = pgTable('users', { id: integer('id').primaryKey(), username: text('username'), email: text('email') });

await rampRename('Drizzle', (client) => {
  const db = drizzle({ client: client as never });
  return {
    insert: async (id, username) => {
      await db.insert(users).values({ id, username, email: `${username}@example.com` });
    },
    update: async (id, username) => {
      await db.update(users).set({ username }).where(eq(users.id, id));
    },
    read: async (id) =>
      (await db.select({ username: users.username }).from(users).where(eq(users.id, id)))[0]?.username,
  };
});
