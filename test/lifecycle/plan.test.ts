/**
 * planMigration: every phase in lifecycle order, the exact SQL expand and contract would
 * run, the flag changes of the ramp, and a rollback for every step.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError } from '../../src/kernel/errors.js';
import { planContract } from '../../src/lifecycle/ddl/contract.js';
import { expand, planExpand } from '../../src/lifecycle/ddl/expand.js';
import { formatPlan, type Phase, planMigration } from '../../src/lifecycle/plan.js';
import { rename } from '../../src/model/mappings.js';
import { defineMigration, type Migration } from '../../src/model/migration.js';
import { defineTable } from '../../src/model/table.js';
import { type DriverContext, describeDrivers } from '../support/drivers.js';

async function setup(ctx: DriverContext): Promise<Migration> {
  await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text)`);
  const users = defineTable({
    name: `${ctx.schema}.users`,
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string() }),
  });
  return defineMigration({
    name: 'users-plan',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'off',
  });
}

describeDrivers('planMigration', (getCtx) => {
  it('phases in order, with the exact SQL of expand and of contract as if expand had run', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const phases = await planMigration(ctx.driver, migration);
    expect(phases.map((phase) => phase.name)).toEqual(['expand', 'backfill', 'ramp', 'verify', 'contract']);
    const expandSql = (await planExpand(ctx.driver, migration)).map((step) => step.sql);
    expect(phases[0]!.steps.map((step) => step.sql)).toEqual(expandSql);
    expect(expandSql).toHaveLength(3);
    const contractSql = (await planContract(ctx.driver, migration, { assumeExpanded: true })).map((step) => step.sql);
    expect(phases[4]!.steps.map((step) => step.sql)).toEqual(contractSql);
    expect(contractSql).toEqual([
      expect.stringContaining('ADD CONSTRAINT "users_username_not_null" CHECK ("username" IS NOT NULL) NOT VALID'),
      expect.stringContaining('VALIDATE CONSTRAINT'),
      expect.stringContaining('SET NOT NULL'),
      expect.stringContaining('DROP CONSTRAINT IF EXISTS'),
      expect.stringMatching(/^DROP TRIGGER IF EXISTS "flagshift_users_plan_[0-9a-f]{8}_sync"/),
      expect.stringMatching(/^DROP FUNCTION IF EXISTS /),
      `ALTER TABLE "${ctx.schema}"."users" DROP COLUMN IF EXISTS "user_name"`,
    ]);
    for (const phase of phases) for (const step of phase.steps) expect(step.rollback.length).toBeGreaterThan(0);
  });

  it('contract phase: a NOT NULL it adds over a nullable old column is a warning, naming the NULLs and the fix', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const nullable = await planMigration(ctx.driver, migration);
    expect(nullable[4]!.warnings).toEqual([
      expect.stringMatching(
        /^contract makes username NOT NULL \(the field is required\), and .*users\.user_name is nullable: it holds no NULL now/,
      ),
    ]);
    await ctx.sql(`INSERT INTO ${ctx.schema}.users VALUES (1, 'ada'), (2, NULL), (3, NULL)`);
    const phases = await planMigration(ctx.driver, migration);
    expect(phases[4]!.warnings).toEqual([
      expect.stringMatching(
        /users\.user_name holds NULL in 2 rows: the backfill copies them and contract's validation will fail; fill them/,
      ),
    ]);
    expect(formatPlan(phases)).toMatch(
      /\n5\. contract\n {3}warning: contract makes username NOT NULL .* holds NULL in 2 rows/,
    );
    // Nothing to say before any other phase.
    expect(phases.slice(0, 4).every((phase) => phase.warnings === undefined)).toBe(true);
  });

  it('the flag changes: dualwrite before the backfill, then shadow, live at each percentage, rampdown, complete', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const phases = await planMigration(ctx.driver, migration, { percents: [5, 25, 100] });
    const flags = (phase: Phase) => phase.steps.flatMap((step) => (step.flagChange ? [step.flagChange] : []));
    expect(flags(phases[1]!)).toEqual([{ stage: 'dualwrite' }]);
    expect(phases[1]!.steps[1]!.action).toMatch(/^run the backfill/);
    expect(flags(phases[2]!)).toEqual([
      { stage: 'shadow' },
      { stage: 'live', percent: 5 },
      { stage: 'live', percent: 25 },
      { stage: 'live', percent: 100 },
      { stage: 'rampdown' },
      { stage: 'complete' },
    ]);
    expect(phases[2]!.steps.map((step) => step.rollback)).toEqual([
      'set "flagshift.users-plan.stage" back to dualwrite',
      'set "flagshift.users-plan.stage" back to shadow (everyone served old at once)',
      'set "flagshift.users-plan.read-percent" back to 5',
      'set "flagshift.users-plan.read-percent" back to 25',
      'set "flagshift.users-plan.stage" back to live',
      expect.stringContaining('set "flagshift.users-plan.stage" back to rampdown'),
    ]);
  });

  it('after expand, the expand phase is empty and the contract phase unchanged', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const before = await planMigration(ctx.driver, migration);
    await expand(ctx.driver, migration, { stateSchema: ctx.schema });
    const after = await planMigration(ctx.driver, migration);
    expect(after[0]!.steps).toEqual([]);
    expect(after[4]!.steps).toEqual(before[4]!.steps);
  });

  it('formatPlan: numbered phases and steps with their SQL, flag change and rollback', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const text = formatPlan(await planMigration(ctx.driver, migration));
    const lines = text.split('\n');
    expect(lines[0]).toBe('1. expand');
    expect(lines[1]).toBe(`   1.1 add column username to ${ctx.schema}.users`);
    expect(lines[2]).toBe(
      `      sql:      ALTER TABLE "${ctx.schema}"."users" ADD COLUMN IF NOT EXISTS "username" text;`,
    );
    expect(lines[3]).toBe(`      rollback: ALTER TABLE "${ctx.schema}"."users" DROP COLUMN IF EXISTS "username"`);
    expect(text).toContain('      flag:     stage=live read-percent=10');
    expect(lines.filter((line) => /^\d\. /.test(line))).toEqual([
      '1. expand',
      '2. backfill',
      '3. ramp',
      '4. verify',
      '5. contract',
    ]);
    // Multi-line SQL (a function body) stays aligned under its label.
    expect(lines.some((line) => line === '                BEGIN')).toBe(true);
  });
});

describe('planMigration options', () => {
  it('percentages must increase within (0, 100]', async () => {
    const never = { query: () => Promise.reject(new Error('no database')) };
    const users = defineTable({ name: 'users', key: 'id', entity: z.object({ id: z.number(), username: z.string() }) });
    const migration = defineMigration({
      name: 'users-plan',
      table: users,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username' })],
      defaultStage: 'off',
    });
    await expect(planMigration(never, migration, { percents: [10, 5] })).rejects.toBeInstanceOf(ConfigurationError);
    await expect(planMigration(never, migration, { percents: [0, 100] })).rejects.toThrow(
      'plan option "percents" must be increasing numbers in (0, 100], got [0, 100]',
    );
  });
});
