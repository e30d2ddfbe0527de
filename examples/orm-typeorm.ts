/**
 * TypeORM (postgres driver) over a routed PGlite: the rename ramps through every stage
 * while TypeORM's entity and queries stay as they are.
 *
 * Run: npx tsx --conditions=flagshift-source examples/orm-typeorm.ts
 */
import { pgModuleOf } from 'flagshift/sql';
import { DataSource, EntitySchema } from 'typeorm';
import { rampRename } from './support/orm-ramp.js';

/** The users table as the application declares it: the new shape only. */
const User = new EntitySchema<{ id: number; username: string | null; email: string | null }>({
  name: 'User',
  tableName: 'users',
  columns: {
    id: { type: 'int', primary: true },
    username: { type: 'text', nullable: true },
    email: { type: 'text', nullable: true },
  },
});

await rampRename('TypeORM', async (db) => {
  // TypeORM builds its pool from the pg module it is given: this one's Pool is the routed database.
  const source = new DataSource({ type: 'postgres', driver: pgModuleOf(db), entities: [User] });
  await source.initialize();
  const users = source.getRepository(User);
  return {
    insert: async (id, username) => {
      await users.insert({ id, username, email: `${username}@example.com` });
    },
    update: async (id, username) => {
      await users.update({ id }, { username });
    },
    read: async (id) => (await users.findOne({ where: { id }, select: { id: true, username: true } }))?.username,
  };
});
