/**
 * The whole expand-contract lifecycle of `users.user_name` -> `users.username`, driven by
 * the lifecycle functions the `flagshift` CLI is built on, on PGlite (nothing to set up):
 *
 *   expand    the SQL it runs (new column, sync trigger), then run for real
 *   backfill  in adaptive batches with progress, while the application and an old
 *             application version (raw SQL to the old column only) keep writing
 *   ramp      shadow, live at 10/50/100 %, rampdown, complete, with simulated traffic
 *             and the mismatches shadow reads found at each step
 *   verify    every row compared in the database
 *   contract  the old column dropped, the new one NOT NULL
 *
 * Run: npx tsx --conditions=flagshift-source examples/lifecycle.ts
 * Exits non-zero if anything turns out other than expected.
 */
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  type Driver,
  defineMigration,
  defineTable,
  rename,
  type Stage,
} from 'flagshift';
import { contract, createBackfill, ddlStatements, expand, formatSql, recordEvent, verify } from 'flagshift/lifecycle';
import { openPglite } from 'flagshift/pglite';
import { z } from 'zod';

const ROWS = 5000;

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
  description: 'users.user_name becomes users.username',
});

const failures: string[] = [];
function check(ok: boolean, what: string): void {
  if (ok) return;
  failures.push(what);
  console.log(`  !! unexpected: ${what}`);
}

function heading(text: string): void {
  console.log(`\n== ${text} ${'='.repeat(Math.max(0, 76 - text.length))}`);
}

async function count(driver: Driver, where: string): Promise<number> {
  const { rows } = await driver.query<{ n: number }>(`SELECT count(*)::int AS n FROM users WHERE ${where}`);
  return rows[0]?.n ?? 0;
}

const { driver, close } = await openPglite();
await driver.query('CREATE TABLE users (id integer PRIMARY KEY, user_name text, email text NOT NULL)');
await driver.query(
  `INSERT INTO users SELECT g, 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, ${ROWS}) g`,
);
console.log(`users: ${ROWS} rows with user_name; migration "${usernameRename.name}": ${usernameRename.description}`);

// The application: a repository routed by the stage flags. Here the flags are in memory;
// in production they live in a flag service or in flagshift/postgres-flags, and every
// change is also written to flagshift's event log (as setMigrationFlags does), which the
// contract gate reads.
const flags = createMemoryFlags({ [usernameRename.stageFlagKey]: 'off', [usernameRename.percentFlagKey]: 0 });
const metrics = createMemoryMetrics();
const repo = createRepository(usernameRename, { driver, flags, metrics });
async function setStage(stage: Stage, percent = 0): Promise<void> {
  flags.setMany({ [usernameRename.stageFlagKey]: stage, [usernameRename.percentFlagKey]: percent });
  await recordEvent(driver, usernameRename.name, 'stage', { to: { stage, percent }, actor: 'examples/lifecycle.ts' });
}

let nextId = ROWS + 1;
/** A burst of traffic: reads, updates and inserts through the SDK, and an old app version's raw SQL. */
async function traffic(operations: number): Promise<void> {
  for (let i = 0; i < operations; i++) {
    const id = 1 + ((i * 7919) % ROWS);
    if (i % 5 === 0) await repo.update(id, { username: `renamed-${id}-${i}` });
    else if (i % 11 === 0) {
      const newId = nextId++;
      await repo.insert({ id: newId, username: `new-${newId}`, email: `new-${newId}@example.com` });
    } else if (i % 13 === 0) {
      // An old application version that knows only user_name: the sync trigger fills username.
      await driver.query('UPDATE users SET user_name = $1 WHERE id = $2', [`legacy-${id}-${i}`, id]);
    } else await repo.get(id);
  }
}

// ---- expand ----------------------------------------------------------------------------
heading('expand');
const dryRun = await expand(driver, usernameRename, { dryRun: true });
console.log('The SQL expand runs, in order (a dry run: nothing changed yet):');
for (const [index, { step }] of dryRun.ddl.steps.entries()) {
  console.log(`\n    -- ${index + 1}. ${step.description}`);
  console.log(formatSql(ddlStatements(step)).replaceAll(/^/gm, '    '));
}
check(
  (await driver.query(`SELECT 1 FROM information_schema.columns WHERE column_name = 'username'`)).rows.length === 0,
  'a dry run changes nothing',
);
const expanded = await expand(driver, usernameRename);
console.log(`\nexpanded: ${expanded.steps.map((step) => step.description).join('; ')}`);

// ---- dual writes and backfill, under traffic -------------------------------------------
heading('dualwrite + backfill');
await setStage('dualwrite');
const progressLines: string[] = [];
const backfill = createBackfill(driver, usernameRename, {
  batchSize: 200,
  targetBatchMs: 50,
  onProgress: (p) => {
    if (p.state !== 'running' || p.totalEstimate === 0) return;
    const line = `  ${p.rowsDone}/${p.totalEstimate} rows, ${Math.round(p.rowsPerSecond)} rows/s, eta ${
      p.etaMs === undefined ? '?' : `${(p.etaMs / 1000).toFixed(1)}s`
    }, batch ${p.batchSize}`;
    // One line in five: enough to watch the batch size adapt.
    if (p.batches % 5 === 1) console.log(line);
    progressLines.push(line);
  },
});
const [report] = await Promise.all([backfill.run(), traffic(400)]);
console.log(
  `backfill ${report.status}: ${report.totalRowsDone} rows scanned, ${report.rowsChanged} changed, ${report.batches} batches`,
);
check(report.status === 'done', 'the backfill finishes');
check(
  (await count(driver, 'username IS DISTINCT FROM user_name')) === 0,
  'after the backfill, username equals user_name on every row',
);

// ---- the ramp --------------------------------------------------------------------------
heading('ramp');
console.log('step             reads  compared  mismatches  served new');
for (const [stage, percent] of [
  ['shadow', 0],
  ['live', 10],
  ['live', 50],
  ['live', 100],
  ['rampdown', 0],
  ['complete', 0],
] as const) {
  await setStage(stage, percent);
  metrics.reset();
  await traffic(300);
  const m = metrics.snapshot().migrations[usernameRename.name];
  const label = stage === 'live' ? `live ${percent}%` : stage;
  console.log(
    `${label.padEnd(15)} ${String(m?.reads.total ?? 0).padStart(6)} ${String(m?.comparisons ?? 0).padStart(9)} ${String(m?.mismatches ?? 0).padStart(11)} ${String(m?.reads.bySide.new ?? 0).padStart(11)}`,
  );
  check((m?.mismatches ?? 0) === 0, `no mismatches in ${label}`);
}

// ---- verify ----------------------------------------------------------------------------
heading('verify');
const verification = await verify(driver, usernameRename);
console.log(
  `${verification.passed ? 'passed' : 'FAILED'}: ${verification.checkedRows} rows checked, ${verification.mismatchedRows} mismatched, ${verification.missingRows} missing`,
);
check(verification.passed, 'verification passes');

// ---- contract --------------------------------------------------------------------------
heading('contract');
const contracted = await contract(driver, usernameRename, { stage: 'complete' });
for (const step of contracted.ddl.steps) console.log(`  ${step.step.description}`);
const columns = await driver.query<{ column_name: string; is_nullable: string }>(
  `SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position`,
);
console.log(
  `users now: ${columns.rows.map((c) => `${c.column_name}${c.is_nullable === 'NO' ? ' NOT NULL' : ''}`).join(', ')}`,
);
check(!columns.rows.some((c) => c.column_name === 'user_name'), 'the old column is gone');
// The application, still at complete, reads and writes the new column only.
await repo.update(1, { username: 'ada' });
check((await repo.get(1))?.username === 'ada', 'the application keeps working after contract');

await close();
if (failures.length > 0) {
  console.log(`\n${failures.length} unexpected result(s)`);
  process.exit(1);
}
console.log('\nall steps as expected');
