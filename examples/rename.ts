/**
 * Rename a column: `users.user_name` becomes `users.username`. Walks the migration through
 * every stage and shows, at each one, what the repository returns and what is stored.
 *
 * Run: npx tsx --conditions=flagshift-source examples/rename.ts
 */

import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  isInReadPercentage,
  rename,
  STAGE_BEHAVIOUR,
  STAGES,
} from 'flagshift';
import { openPglite } from 'flagshift/pglite';
import { z } from 'zod';
import { backfill } from './support/backfill.js';
import { line, printQuery } from './support/print-rows.js';
import { readReport } from './support/read-report.js';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
});

const usernameRename = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'off',
});

const { driver, close } = await openPglite();
await driver.query('CREATE TABLE users (id integer PRIMARY KEY, user_name text, email text NOT NULL)');
await driver.query(`INSERT INTO users VALUES (1, 'ada', 'ada@example.com'), (2, 'grace', 'grace@example.com')`);
// Expand (by hand until the lifecycle commands exist): the new column, empty.
await driver.query('ALTER TABLE users ADD COLUMN username text');

const flags = createMemoryFlags({ [usernameRename.stageFlagKey]: 'off', [usernameRename.percentFlagKey]: 100 });
const metrics = createMemoryMetrics();
const repo = createRepository(usernameRename, { driver, flags, metrics });

let nextId = 3;
for (const stage of STAGES) {
  flags.set(usernameRename.stageFlagKey, stage);
  const behaviour = STAGE_BEHAVIOUR[stage];
  console.log(
    `\n-- ${stage}: reads ${behaviour.reads.join(' + ')}, serves ${behaviour.serves}, writes ${behaviour.writes.join(' + ')}`,
  );
  const id = nextId++;
  await repo.insert({ id, username: `${stage}-user`, email: `${stage}@example.com` });
  await repo.update(1, { username: `ada-${stage}` });
  console.log(`   insert id ${id}; update id 1 to username "ada-${stage}"`);
  metrics.reset();
  const ada = await repo.get(1);
  console.log(`   get(1) -> ${line(ada)}  [${readReport(metrics)}]`);
  if (stage === 'dualwrite') await backfill(driver, usernameRename);
  await printQuery(driver, 'SELECT id, user_name, username FROM users ORDER BY id');
}

// Ramping inside live: an entity reads new when its bucket is under the read percentage.
// The bucket depends only on the stage flag key and the entity key, so it is sticky.
console.log('\n-- ramping in live: which ids read new at each read percentage');
for (const percent of [10, 50, 90]) {
  const inRamp = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].filter((id) =>
    isInReadPercentage(percent, usernameRename.stageFlagKey, String(id)),
  );
  console.log(`   ${String(percent).padStart(3)}%: ids ${inRamp.join(', ') || '(none)'}`);
}

repo.close();
await close();
