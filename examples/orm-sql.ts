/**
 * Plain parameterised SQL (what any ORM finally sends) over a routed PGlite: the rename
 * ramps through every stage while the statements name only the new shape.
 *
 * Run: npx tsx --conditions=flagshift-source examples/orm-sql.ts
 */
import { rampRename } from './support/orm-ramp.js';

await rampRename('SQL', (db) => ({
  insert: async (id, username) => {
    await db.query('INSERT INTO users (id, username, email) VALUES ($1, $2, $3)', [id, username, `${username}@x`]);
  },
  update: async (id, username) => {
    await db.query('UPDATE users SET username = $2 WHERE id = $1', [id, username]);
  },
  read: async (id) =>
    ((await db.query('SELECT username FROM users WHERE id = $1', [id])).rows[0] as { username: string } | undefined)
      ?.username,
}));
