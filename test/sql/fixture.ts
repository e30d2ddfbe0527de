/**
 * The table and rename the SQL router's suites route: `users(id, user_name -> username,
 * email)`, named unqualified as ORMs name it (the test's schema comes first in the
 * search path).
 */
import { defineMigration, defineTable, rename, type Stage } from 'flagshift';
import { userEntity } from '../support/fixtures.js';

export const users = defineTable({ name: 'users', key: 'id', entity: userEntity });

/** The `users-username` rename, falling back to `defaultStage` when the flags fail. */
export function usernameRename(defaultStage: Stage = 'dualwrite') {
  return defineMigration({
    name: 'users-username',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage,
  });
}
