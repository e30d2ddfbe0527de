/** The migration the fleet tests run: `users.user_name` renamed to `username`, its table unqualified so each member binds it. */
import { defineMigration, defineTable, rename } from 'flagshift';
import { z } from 'zod';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string().nullable() }),
});

/** `users-username`, default stage `dualwrite`. */
export const usersUsername = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'dualwrite',
});
