/**
 * Change column types through new columns: `accounts.visits` (integer) becomes
 * `visits_big` (bigint), and `accounts.settings` (text holding JSON) becomes
 * `settings_json` (jsonb). Two migrations on one table, each with its own flags, served by
 * one repository.
 *
 * Run: npx tsx --conditions=flagshift-source examples/change-type.ts
 */

import {
  changeType,
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  STAGES,
} from 'flagshift';
import { openPglite } from 'flagshift/pglite';
import { z } from 'zod';
import { backfill } from './support/backfill.js';
import { line, printQuery } from './support/print-rows.js';
import { readReport } from './support/read-report.js';

const accounts = defineTable({
  name: 'accounts',
  key: 'id',
  entity: z.object({
    id: z.number().int(),
    // The entity has the new types: a bigint, and an object rather than a JSON string.
    visits: z.bigint(),
    settings: z.record(z.string(), z.unknown()),
  }),
});

const visitsToBigint = defineMigration({
  name: 'accounts-visits-bigint',
  table: accounts,
  mappings: [
    changeType({
      field: 'visits',
      from: { column: 'visits', type: 'integer' },
      to: { column: 'visits_big', type: 'bigint' },
    }),
  ],
  defaultStage: 'off',
});

const settingsToJsonb = defineMigration({
  name: 'accounts-settings-jsonb',
  table: accounts,
  mappings: [
    changeType({
      field: 'settings',
      from: { column: 'settings', type: 'text' },
      to: { column: 'settings_json', type: 'jsonb' },
    }),
  ],
  defaultStage: 'off',
});

const { driver, close } = await openPglite();
await driver.query('CREATE TABLE accounts (id integer PRIMARY KEY, visits integer NOT NULL, settings text)');
await driver.query(`INSERT INTO accounts VALUES (1, 41, '{"theme":"dark","beta":true}'), (2, 7, '{}')`);
// Expand, by hand. NOT NULL comes back at contract; until then writes at complete leave `visits` empty.
await driver.query(
  'ALTER TABLE accounts ALTER COLUMN visits DROP NOT NULL, ADD COLUMN visits_big bigint, ADD COLUMN settings_json jsonb',
);
await printQuery(
  driver,
  `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'accounts' ORDER BY ordinal_position`,
  '   ',
);

const flags = createMemoryFlags({
  [visitsToBigint.stageFlagKey]: 'off',
  [visitsToBigint.percentFlagKey]: 100,
  [settingsToJsonb.stageFlagKey]: 'off',
  [settingsToJsonb.percentFlagKey]: 100,
});
const metrics = createMemoryMetrics();
const repo = createRepository([visitsToBigint, settingsToJsonb], { driver, flags, metrics });
const big = 3_000_000_000n;

let nextId = 3;
for (const stage of STAGES) {
  // Each migration has its own stage flag; here they move together.
  flags.setMany({ [visitsToBigint.stageFlagKey]: stage, [settingsToJsonb.stageFlagKey]: stage });
  console.log(`\n-- ${stage}`);
  const id = nextId++;
  await repo.insert({ id, visits: 1n, settings: { theme: 'light', since: stage } });
  await repo.update(1, { visits: 42n, settings: { theme: 'dark', beta: true, stage } });
  console.log(`   insert id ${id}; update id 1`);
  if (stage === 'dualwrite') {
    await backfill(driver, visitsToBigint);
    await backfill(driver, settingsToJsonb);
  }
  if (stage === 'dualwrite' || stage === 'complete') {
    // While the integer column is still written, it still limits the value.
    try {
      await repo.update(2, { visits: big });
      console.log(`   update id 2 visits ${big}n -> ok, the integer column is no longer written`);
    } catch (error) {
      if (!(error instanceof DriverError)) throw error;
      console.log(
        `   update id 2 visits ${big}n -> ${error.name} ${error.code}, SQLSTATE ${error.sqlState}: nothing written`,
      );
    }
  }
  metrics.reset();
  const account = await repo.get(1);
  console.log(`   get(1) -> ${line(account)}  [${readReport(metrics)}]`);
  await printQuery(driver, 'SELECT id, visits, visits_big, settings, settings_json::text FROM accounts ORDER BY id');
}

repo.close();
await close();
