/**
 * A migrations module for the `flagshift` CLI: `users.user_name` becomes `users.username`.
 * The CLI loads it from ./flagshift.config.ts by default, or from `--migrations <file>`;
 * it takes every migration the module exports (a default list, or named exports).
 *
 * Try it against a database that has a `users (id integer PRIMARY KEY, user_name text,
 * email text)` table:
 *
 *   export DATABASE_URL=postgres://postgres@localhost:5432/app
 *   npm run flagshift -- --migrations examples/flagshift.config.ts plan users-username
 *   npm run flagshift -- --migrations examples/flagshift.config.ts expand users-username --dry-run
 */
import { defineMigration, defineTable, rename } from 'flagshift';
import { z } from 'zod';

/** The table as the application sees it once the migration is done. */
export const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
});

/** `user_name` becomes `username`. Routed by `flagshift.users-username.stage` and `.read-percent`. */
export const usernameRename = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'off',
  description: 'users.user_name becomes users.username',
});

export default [usernameRename];
