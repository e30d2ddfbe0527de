/**
 * Move a column to another table: `users.bio` becomes `user_profiles.bio`, keyed by
 * `user_profiles.user_id`. Writes of both sides run in one transaction; a shadow read
 * fetches the profile row alongside the user row and compares.
 *
 * Run: npx tsx --conditions=flagshift-source examples/cross-table.ts
 */

import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  moveColumn,
  STAGES,
} from 'flagshift';
import { openPglite } from 'flagshift/pglite';
import { z } from 'zod';
import { line, printQuery } from './support/print-rows.js';
import { readReport } from './support/read-report.js';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), email: z.string(), bio: z.string().nullable() }),
});

const bioMove = defineMigration({
  name: 'users-bio-to-profiles',
  table: users,
  mappings: [
    moveColumn({
      field: 'bio',
      from: 'bio',
      to: { table: 'user_profiles', column: 'bio', key: ['user_id'] },
      type: 'text',
    }),
  ],
  defaultStage: 'off',
});

const { driver, close } = await openPglite();
await driver.query('CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, bio text)');
await driver.query(`INSERT INTO users VALUES (1, 'ada@example.com', 'Analyst'), (2, 'grace@example.com', 'Admiral')`);
// Expand, by hand: the new table. flagshift deletes a profile row before its user in the stages
// that write the new side; ON DELETE CASCADE covers `off`, which doesn't (after a step back).
await driver.query(
  'CREATE TABLE user_profiles (user_id integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE, bio text)',
);

const flags = createMemoryFlags({ [bioMove.stageFlagKey]: 'off', [bioMove.percentFlagKey]: 100 });
const metrics = createMemoryMetrics();
const repo = createRepository(bioMove, { driver, flags, metrics });

let nextId = 3;
for (const stage of STAGES) {
  flags.set(bioMove.stageFlagKey, stage);
  console.log(`\n-- ${stage}`);
  const id = nextId++;
  await repo.insert({ id, email: `${stage}@example.com`, bio: `joined in ${stage}` });
  await repo.update(1, { bio: `Analyst (${stage})` });
  console.log(`   insert id ${id}; update id 1 bio`);
  if (stage === 'dualwrite') {
    // Backfill, by hand: a profile row for every user that has none yet.
    const { rowCount } = await driver.query(
      'INSERT INTO user_profiles (user_id, bio) SELECT id, bio FROM users ON CONFLICT (user_id) DO NOTHING',
    );
    console.log(
      `   backfill: INSERT INTO user_profiles (user_id, bio) SELECT id, bio FROM users ON CONFLICT DO NOTHING -- ${rowCount} rows`,
    );
  }
  if (stage === 'rampdown') {
    await repo.delete(2);
    console.log('   delete id 2 (profile row first, then the user, in one transaction)');
  }
  metrics.reset();
  const ada = await repo.get(1);
  console.log(`   get(1) -> ${line(ada)}  [${readReport(metrics)}]`);
  await printQuery(driver, 'SELECT id, email, bio FROM users ORDER BY id');
  await printQuery(driver, 'SELECT user_id, bio FROM user_profiles ORDER BY user_id');
}

repo.close();
await close();
