/**
 * The flagshift demo: renames `users.user_name` to `users.username` on a table of 5000
 * rows, through every stage, with simulated traffic at each step, flags from an
 * OpenFeature in-memory provider and metrics from the in-memory sink.
 *
 * Run with `npm run demo`. Exits non-zero if anything turns out other than expected.
 */
import { InMemoryProvider, OpenFeature } from '@openfeature/server-sdk';
import {
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  KILL_SWITCH,
  rename,
  type Stage,
} from 'flagshift';
import { createOpenFeatureFlags } from 'flagshift/openfeature';
import { openPglite } from 'flagshift/pglite';
import { z } from 'zod';

const SEED_ROWS = 5000;
const OPS_PER_STEP = 300;
const BACKFILL_BATCH = 1000;
const INTRUDER_ID = 42;

// ---- the model: what application code sees ----

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
});

const usernameRename = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  // Used only if the flag system fails before this process ever read the stage flag.
  // In production, raise it as the rollout progresses, so an outage never stops dual writes.
  defaultStage: 'off',
});

// ---- output helpers ----

const failures: string[] = [];
function expect(ok: boolean, what: string): void {
  if (!ok) {
    failures.push(what);
    console.log(`  !! unexpected: ${what}`);
  }
}

function heading(text: string): void {
  console.log(`\n== ${text} ${'='.repeat(Math.max(0, WIDTH - 4 - text.length))}`);
}

function note(text: string): void {
  console.log(`   ${text}`);
}

const COLUMNS = [
  ['step', 20],
  ['stage', 10],
  ['read%', 6],
  ['reads old', 10],
  ['reads new', 10],
  ['writes old', 11],
  ['writes new', 11],
  ['compared', 9],
  ['mismatches', 11],
  ['rate', 8],
] as const;
const WIDTH = COLUMNS.reduce((sum, [, width]) => sum + width + 1, -1);

function row(cells: readonly (string | number)[]): string {
  return cells
    .map((cell, index) => {
      const width = COLUMNS[index]![1];
      const text = String(cell);
      return index < 2 ? text.padEnd(width) : text.padStart(width);
    })
    .join(' ');
}

function tableHeader(): void {
  console.log(row(COLUMNS.map(([title]) => title)));
  console.log(row(COLUMNS.map(([, width]) => '-'.repeat(width))));
}

// A small seeded generator, so every run sends the same traffic.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- the database ----

console.log('flagshift demo: rename users.user_name -> users.username, expand-contract on PGlite');
heading('setup');
let started = performance.now();
const { driver, close } = await openPglite();
note(`PGlite (in-process PostgreSQL) started in ${((performance.now() - started) / 1000).toFixed(1)} s`);
await driver.query('CREATE TABLE users (id integer PRIMARY KEY, user_name text, email text NOT NULL)');
await driver.query(
  `INSERT INTO users (id, user_name, email)
   SELECT g, 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, $1::int) AS g`,
  [SEED_ROWS],
);
note(`CREATE TABLE users (id integer PRIMARY KEY, user_name text, email text NOT NULL); ${SEED_ROWS} rows`);

heading('expand');
// The schema steps are plain SQL here, so each stays visible next to the traffic. On a real
// database they are the CLI's expand, backfill, verify and contract commands, or the same
// functions from flagshift/lifecycle (examples/lifecycle.ts, npm run lifecycle, runs them on this migration).
await driver.query('ALTER TABLE users ADD COLUMN username text');
note('ALTER TABLE users ADD COLUMN username text   (plain SQL here, to show each step)');
note('  on a real database: flagshift expand users-username, or expand() from flagshift/lifecycle');

// ---- flags: an OpenFeature provider, changed at runtime ----

const provider = new InMemoryProvider({});
function setFlags(stage: Stage, percent: number): void {
  // putConfiguration fires configuration-changed: flagshift drops its cached decisions at once.
  provider.putConfiguration({
    [usernameRename.stageFlagKey]: { variants: { current: stage }, defaultVariant: 'current', disabled: false },
    [usernameRename.percentFlagKey]: { variants: { current: percent }, defaultVariant: 'current', disabled: false },
  });
}
setFlags('off', 0);
await OpenFeature.setProviderAndWait('migrations', provider);

const metrics = createMemoryMetrics();
const repo = createRepository(usernameRename, {
  driver,
  flags: createOpenFeatureFlags({ domain: 'migrations' }),
  metrics,
});
await repo.check();

// ---- traffic ----

const random = mulberry32(20240601);
let nextId = SEED_ROWS + 1;
let version = 0;
/** Ids written through the repository, by the stage flag at the time. */
const writtenIn = new Map<Stage, Set<number>>();
let currentStage: Stage = 'off';

function randomId(): number {
  return 1 + Math.floor(random() * (nextId - 1));
}

function remember(id: number): void {
  let ids = writtenIn.get(currentStage);
  if (ids === undefined) {
    ids = new Set();
    writtenIn.set(currentStage, ids);
  }
  ids.add(id);
}

/** A few hundred mixed operations with random keys, as an application would send them. */
async function traffic(operations: number): Promise<void> {
  for (let i = 0; i < operations; i++) {
    const dice = random();
    if (dice < 0.45) {
      await repo.get(randomId());
    } else if (dice < 0.6) {
      await repo.getMany([randomId(), randomId(), randomId(), randomId(), randomId()]);
    } else if (dice < 0.9) {
      const id = randomId();
      // Excludes the intruder row, so the traffic never happens to repair it for us.
      if (id === INTRUDER_ID) continue;
      await repo.update(id, { username: `user${id}-v${++version}` });
      remember(id);
    } else {
      const id = nextId++;
      await repo.insert({ id, username: `new${id}`, email: `new${id}@example.com` });
      remember(id);
    }
  }
}

interface StepResult {
  readsOld: number;
  readsNew: number;
  comparisons: number;
  mismatches: number;
}

/** Runs `work` with fresh metrics and prints one line for it. */
async function step(label: string, stage: Stage, percent: number, work: () => Promise<void>): Promise<StepResult> {
  metrics.reset();
  await work();
  const totals = metrics.snapshot().totals;
  const result = {
    readsOld: totals.reads.bySide.old,
    readsNew: totals.reads.bySide.new,
    comparisons: totals.comparisons,
    mismatches: totals.mismatches,
  };
  console.log(
    row([
      label,
      stage,
      stage === 'live' ? percent : '-',
      result.readsOld,
      result.readsNew,
      totals.writes.bySide.old,
      totals.writes.bySide.new,
      totals.comparisons,
      totals.mismatches,
      `${(totals.mismatchRate * 100).toFixed(2)}%`,
    ]),
  );
  expect(totals.errors.total === 0, `${label}: ${totals.errors.total} errors`);
  expect(totals.flagFallbacks.total === 0, `${label}: ${totals.flagFallbacks.total} flag fallbacks`);
  if (stage === 'off' || stage === 'complete') {
    expect(
      stage === 'off' ? totals.writes.bySide.new === 0 : totals.writes.bySide.old === 0,
      `${label}: one side only`,
    );
  } else {
    expect(totals.writes.bySide.old === totals.writes.bySide.new, `${label}: every write goes to both sides`);
  }
  return result;
}

async function runStage(stageName: Stage, percent: number, label: string = stageName): Promise<StepResult> {
  currentStage = stageName;
  setFlags(stageName, percent);
  return step(label, stageName, percent, () => traffic(OPS_PER_STEP));
}

async function differing(ids?: readonly number[]): Promise<{ differ: number; total: number }> {
  const filter = ids === undefined ? '' : 'WHERE id = ANY($1::int[])';
  const { rows } = await driver.query<{ differ: number; total: number }>(
    `SELECT count(*) FILTER (WHERE user_name IS DISTINCT FROM username)::int AS differ, count(*)::int AS total
     FROM users ${filter}`,
    ids === undefined ? [] : [ids],
  );
  return rows[0]!;
}

// ---- the rollout ----

heading('rollout: one line per step, metrics reset between steps');
note(`${OPS_PER_STEP} operations a step: get 45%, getMany(5) 15%, update 30%, insert 10%, random keys`);
note('reads old/new: read operations by the side whose value the caller got');
note('writes old/new: write operations by side; a dual write is one statement counted on each side');
console.log();
tableHeader();
started = performance.now();

let r = await runStage('off', 0);
expect(r.readsNew === 0, 'off serves old only');

r = await runStage('dualwrite', 0);
expect(r.readsNew === 0 && r.comparisons === 0, 'dualwrite serves old only and compares nothing');

// Backfill: copy the old column into the new one for rows no dual write has set yet.
{
  const before = await differing();
  let copied = 0;
  let batches = 0;
  for (let from = 1; from < nextId; from += BACKFILL_BATCH) {
    const result = await driver.query(
      'UPDATE users SET username = user_name WHERE id >= $1 AND id < $2 AND username IS NULL',
      [from, from + BACKFILL_BATCH],
    );
    copied += result.rowCount ?? 0;
    batches++;
  }
  const after = await differing();
  note(`backfill (plain SQL): UPDATE users SET username = user_name WHERE id >= $1 AND id < $2 AND username IS NULL`);
  note(
    '  on a real database: flagshift backfill users-username (resumable), or createBackfill() from flagshift/lifecycle',
  );
  note(`  ${copied} rows copied in ${batches} batches of ${BACKFILL_BATCH} ids;`);
  note(`  rows where user_name and username differ: ${before.differ} before, ${after.differ} after, of ${after.total}`);
  expect(after.differ === 0, 'after the backfill old and new agree on every row');
}

r = await runStage('shadow', 0);
expect(r.comparisons > 0 && r.mismatches === 0, 'shadow compares and finds nothing');

// A write behind the SDK's back: the new column diverges, and the next read of the row shows it.
{
  await driver.query(`UPDATE users SET username = 'intruder' WHERE id = $1`, [INTRUDER_ID]);
  note(`intruder: UPDATE users SET username = 'intruder' WHERE id = ${INTRUDER_ID}   (raw SQL, behind the SDK's back)`);
  let served: unknown;
  r = await step('shadow: read id 42', 'shadow', 0, async () => {
    served = (await repo.get(INTRUDER_ID))?.username;
  });
  expect(r.mismatches === 1, 'the divergent row is caught');
  expect(served === `user${INTRUDER_ID}` || String(served).startsWith(`user${INTRUDER_ID}-`), 'shadow serves old');
  note(`the caller got username ${JSON.stringify(served)} (old side: shadow never serves new)`);
  const sample = metrics.snapshot().recentMismatches.at(-1);
  if (sample === undefined) {
    expect(false, 'a mismatch sample was recorded');
  } else {
    note(
      `mismatch sample: migration ${sample.migration}, stage ${sample.stage} (routed as ${sample.route}), operation ${sample.operation}`,
    );
    note(`  key   ${String(sample.key)}   (redacted: keys and values are hashed unless rawValues is set)`);
    for (const diff of sample.diffs) {
      note(`  field ${diff.field}: ${diff.kind}, old ${String(diff.old)}, new ${String(diff.new)}`);
    }
  }
  await driver.query('UPDATE users SET username = user_name WHERE id = $1', [INTRUDER_ID]);
  r = await step('shadow: re-read 42', 'shadow', 0, async () => {
    await repo.get(INTRUDER_ID);
  });
  note(`repaired by re-running the backfill for id ${INTRUDER_ID}; the next read matches`);
  expect(r.mismatches === 0 && r.comparisons === 1, 'the repaired row matches');
}

r = await runStage('live', 0, 'live 0%');
expect(r.readsNew === 0 && r.mismatches === 0, 'live at 0% serves old and compares');
r = await runStage('live', 10, 'live 10%');
expect(r.readsNew > 0 && r.readsOld > 0 && r.mismatches === 0, 'live at 10% serves some new');
r = await runStage('live', 50, 'live 50%');
expect(r.readsNew > 0 && r.readsOld > 0 && r.mismatches === 0, 'live at 50% serves about half new');

// The kill switch (what `flagshift flags kill`, the dashboard and a guardrail do): reads
// back to old at once, writes still reach both sides, the read percentage back to 0.
setFlags(KILL_SWITCH.stage, KILL_SWITCH.percent);
currentStage = KILL_SWITCH.stage;
note(`KILL: stage ${KILL_SWITCH.stage}, read percentage ${KILL_SWITCH.percent}: reads old, writes both`);
r = await step('killed', KILL_SWITCH.stage, KILL_SWITCH.percent, () => traffic(OPS_PER_STEP / 2));
expect(r.readsNew === 0 && r.comparisons === 0, 'after the kill no read is served new');
note('resume: stage flag set to live 50% again');
r = await runStage('live', 50, 'live 50% resumed');
expect(r.readsNew > 0 && r.mismatches === 0, 'resumed live serves new again');

r = await runStage('live', 100, 'live 100%');
expect(r.readsOld === 0 && r.mismatches === 0, 'live at 100% serves new only');
r = await runStage('rampdown', 100);
expect(r.readsOld === 0 && r.comparisons === 0, 'rampdown serves new only and compares nothing');

const beforeComplete = await differing();
note(`before complete: ${beforeComplete.differ} of ${beforeComplete.total} rows differ between user_name and username`);
expect(beforeComplete.differ === 0, 'old and new agree on every row before complete');

r = await runStage('complete', 100);
expect(r.readsOld === 0 && r.comparisons === 0, 'complete serves new only');
const rolloutMs = performance.now() - started;

// ---- verification ----

heading('verify');
{
  const inComplete = [...(writtenIn.get('complete') ?? [])];
  const dualStages: Stage[] = ['dualwrite', 'shadow', 'live', 'rampdown'];
  const dualWritten = [
    ...new Set(dualStages.flatMap((name) => [...(writtenIn.get(name) ?? [])]).filter((id) => !inComplete.includes(id))),
  ];
  const { rows } = await driver.query<{ id: number }>('SELECT id FROM users WHERE NOT (id = ANY($1::int[]))', [
    inComplete,
  ]);
  const untouchedSinceComplete = rows.map((row) => row.id);
  const dual = await differing(dualWritten);
  const all = await differing(untouchedSinceComplete);
  const complete = await differing(inComplete);
  note(`rows written through the SDK while both sides were written: ${dual.total}, differing: ${dual.differ}`);
  note(`all rows not written since complete (includes backfilled ones): ${all.total}, differing: ${all.differ}`);
  note(
    `rows written in complete: ${complete.total}, differing: ${complete.differ} (complete writes new only: user_name is left behind)`,
  );
  expect(dual.total > 0 && dual.differ === 0, 'every dual-written row agrees');
  expect(all.differ === 0, 'every row written before complete agrees');

  // Contract in plain SQL: the old column goes, and the application keeps working.
  // flagshift contract (or contract() from flagshift/lifecycle) also drops the sync triggers,
  // and refuses until the stage is complete and a verification passed.
  await driver.query('ALTER TABLE users DROP COLUMN user_name');
  r = await step('after contract', 'complete', 100, () => traffic(100));
  note(
    'ALTER TABLE users DROP COLUMN user_name   (plain SQL; on a real database: flagshift verify, then flagshift contract users-username); 100 more operations ran without the old column',
  );
}

repo.close();
await OpenFeature.close();
await close();

heading('result');
note(`rollout traffic took ${(rolloutMs / 1000).toFixed(1)} s`);
if (failures.length > 0) {
  note(`${failures.length} unexpected outcome(s):`);
  for (const failure of failures) note(`  - ${failure}`);
  process.exit(1);
}
note('every check passed');

// What to try next, with commands that run as printed in a clone of the repository.
heading('try next');
note('the CLI against your own database, with a table users (id integer PRIMARY KEY, user_name text, email text):');
note('  export DATABASE_URL=postgres://user:password@host:5432/database');
note('  npm run flagshift -- -m examples/flagshift.config.ts plan users-username');
note('  npm run flagshift -- -m examples/flagshift.config.ts expand users-username --dry-run');
note('the dashboard over that database (it shows what applications publish with createMetricsPublisher):');
note('  npm run flagshift -- -m examples/flagshift.config.ts dashboard');
note('the whole guide: README.md ("Guide: a rename in a clone"); the runbook: docs/operations.md');
