/**
 * Model-based tests: random sequences of repository operations (insert, update, upsert,
 * delete, get, getMany, find with filter operators and projections, count, page walks,
 * inserts that leave the key to the table's identity), concurrent writes, stage and read-percentage changes,
 * backfill passes in small batches and writes by an old app version that knows only the
 * old column, run against each driver and the in-memory model of test/support/model.ts.
 * After every command the table, the values returned and the metric events must match the
 * model; at the end, verification must find exactly the rows the model says differ.
 * Failing sequences shrink to a minimal one.
 *
 * FLAGSHIFT_MODEL_RUNS raises the number of runs; FLAGSHIFT_MODEL_SEED replays one.
 */
import fc from 'fast-check';
import type { Stage } from 'flagshift';
import { it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import {
  ALL_STAGES,
  type Command,
  commands,
  DUAL_WRITE_STAGES,
  modelParameters,
  modelRuns,
  percents,
  type SequenceOptions,
} from '../support/model.js';
import { createModelTable, type ModelDatabase, type ModelSetup, startModelRun } from '../support/model-runner.js';

const TIMEOUT_MS = 60_000 + modelRuns(40) * 1_500;

/** Random sequences from `options`, each run from a random stage and percentage on `db`, with `setup`'s triggers. */
function sequences(
  db: ModelDatabase,
  options: SequenceOptions,
  runs: number,
  setup: { syncTriggers?: boolean } = {},
): Promise<void> {
  return fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Stage>(...options.stages),
      percents,
      commands(options),
      (stage, percent, sequence) => runSequence(db, { stage, percent, ...setup }, sequence),
    ),
    modelParameters(runs),
  );
}

async function runSequence(db: ModelDatabase, setup: ModelSetup, sequence: readonly Command[]): Promise<void> {
  const run = await startModelRun(db, setup);
  try {
    for (const command of sequence) await run.step(command);
    await run.finish();
  } finally {
    run.close();
  }
}

describeDrivers('model: repository against the stage contract', (getCtx) => {
  const database = async (syncTriggers: boolean): Promise<ModelDatabase> => {
    const ctx = getCtx();
    const db = { driver: ctx.driver, admin: ctx.admin, schema: ctx.schema };
    await createModelTable(db, { syncTriggers });
    return db;
  };

  it(
    'dualwrite to rampdown: every acknowledged write reads back, sides never diverge, reads come from the side the stage serves',
    async () => {
      const db = await database(false);
      await sequences(db, { stages: DUAL_WRITE_STAGES, rawOldWrites: false, backfill: true }, 40);
    },
    TIMEOUT_MS,
  );

  it(
    'all six stages and an old app version, no sync triggers: reads return the served side, mismatches and verification failures exactly where the sides differ, backfill repairs them',
    async () => {
      const db = await database(false);
      await sequences(db, { stages: ALL_STAGES, rawOldWrites: true, backfill: true }, 30);
    },
    TIMEOUT_MS,
  );

  it(
    'all six stages and an old app version, with the sync triggers of expand: the sides never diverge',
    async () => {
      const db = await database(true);
      await sequences(db, { stages: ALL_STAGES, rawOldWrites: true, backfill: true }, 30, { syncTriggers: true });
    },
    TIMEOUT_MS,
  );

  it(
    'queries in all six stages: operators, projections, counts and page walks (with writes between pages) return what the served side matches, and compare exactly where the sides differ',
    async () => {
      const db = await database(false);
      await sequences(db, { stages: ALL_STAGES, rawOldWrites: true, backfill: false, queries: true }, 60);
    },
    TIMEOUT_MS,
  );
});
