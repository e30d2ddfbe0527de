/**
 * Split a column: `people.name` becomes `first_name` and `last_name`. The entity already
 * has the new shape (`firstName`, `lastName`); while the old column is still read or
 * written, flagshift joins and splits the name for it.
 *
 * Run: npx tsx --conditions=flagshift-source examples/split.ts
 */

import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  FlagshiftError,
  STAGES,
  split,
} from 'flagshift';
import { openPglite } from 'flagshift/pglite';
import { z } from 'zod';
import { backfill } from './support/backfill.js';
import { line, printQuery } from './support/print-rows.js';
import { readReport } from './support/read-report.js';

const people = defineTable({
  name: 'people',
  key: 'id',
  entity: z.object({
    id: z.number().int(),
    // A one-word name has no last name: both parts are nullable.
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    city: z.string(),
  }),
});

const nameSplit = defineMigration({
  name: 'people-name-split',
  table: people,
  mappings: [split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } })],
  defaultStage: 'off',
  // Mismatch samples carry raw values instead of hashes: fine for an example, not for personal data.
  compare: { rawValues: true },
});

const { driver, close } = await openPglite();
await driver.query('CREATE TABLE people (id integer PRIMARY KEY, name text, city text NOT NULL)');
await driver.query(
  `INSERT INTO people VALUES (1, 'Ada Lovelace', 'London'), (2, 'Mary Ann Evans', 'Nuneaton'), (3, 'Hypatia', 'Alexandria')`,
);
await driver.query('ALTER TABLE people ADD COLUMN first_name text, ADD COLUMN last_name text');

const flags = createMemoryFlags({ [nameSplit.stageFlagKey]: 'off', [nameSplit.percentFlagKey]: 100 });
const metrics = createMemoryMetrics();
const repo = createRepository(nameSplit, { driver, flags, metrics });

console.log(
  'split people.name at the first space: "Mary Ann Evans" -> "Mary" + "Ann Evans", "Hypatia" -> "Hypatia" + NULL',
);
let nextId = 4;
for (const stage of STAGES) {
  flags.set(nameSplit.stageFlagKey, stage);
  console.log(`\n-- ${stage}`);
  const id = nextId++;
  await repo.insert({ id, firstName: 'Grace', lastName: `Hopper (${stage})`, city: 'New York' });
  // Only one of the two fields: flagshift reads the other under a row lock to rebuild `name`.
  await repo.update(1, { lastName: `King (${stage})` });
  console.log(`   insert id ${id}; update id 1 lastName only`);
  metrics.reset();
  const [ada, mary] = await repo.getMany([1, 2]);
  console.log(`   getMany([1, 2]) -> ${line(ada)}, ${line(mary)}  [${readReport(metrics)}]`);
  if (stage === 'dualwrite') await backfill(driver, nameSplit);
  if (stage === 'shadow') {
    // A first name with a space in it does not survive the trip through the old column:
    // the shadow read shows it before any reader is served from the new columns.
    await repo.insert({ id: 20, firstName: 'Mary Ann', lastName: 'Evans', city: 'Coventry' });
    metrics.reset();
    const mary = await repo.get(20);
    const sample = metrics.snapshot().recentMismatches[0];
    console.log(`   insert id 20 { firstName: 'Mary Ann', lastName: 'Evans' }; get(20) -> ${line(mary)}`);
    console.log(`     [${readReport(metrics)}]`);
    for (const diff of sample?.diffs ?? []) {
      console.log(`     ${diff.field}: old ${line(diff.old)}, new ${line(diff.new)}`);
    }
    // Not a bug in the data: the old column can't tell the two apart. Shadow served old as always.
    await repo.delete(20);
  }
  await printQuery(driver, 'SELECT id, name, first_name, last_name FROM people ORDER BY id');
}

// Rejected in every stage, before any SQL runs: the old column holds both fields together.
console.log('\n-- queries on a split field (stage complete)');
const found = await repo.find({ where: { firstName: 'Mary', lastName: 'Ann Evans' } });
console.log(`   find({ where: { firstName: 'Mary', lastName: 'Ann Evans' } }) -> ${line(found)}`);
for (const [label, query] of [
  ["find({ where: { firstName: 'Mary' } })", { where: { firstName: 'Mary' } }],
  ["find({ orderBy: 'lastName' })", { orderBy: 'lastName' }],
] as const) {
  try {
    await repo.find(query);
    throw new Error(`${label} was expected to be rejected`);
  } catch (error) {
    if (!(error instanceof FlagshiftError)) throw error;
    console.log(`   ${label} -> ${error.name} ${error.code}:\n     ${error.message}`);
  }
}

repo.close();
await close();
