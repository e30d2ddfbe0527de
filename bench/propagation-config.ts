/**
 * The migration the propagation benchmark (bench/propagation.ts) moves back and forth:
 * loaded by the benchmark itself and, as its migrations module, by `flagshift flags set`.
 */
import { defineMigration, defineTable, rename } from 'flagshift';
import { z } from 'zod';

/** `bench_users.user_name` becomes `username`. */
export const propagationMigration = defineMigration({
  name: 'bench-propagation',
  table: defineTable({
    name: 'bench_users',
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string() }),
  }),
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'off',
});

export default [propagationMigration];
