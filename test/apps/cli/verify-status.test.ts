import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSchema, createCliSchema } from './support/run-cli.js';

/** A schema whose `users` holds 20 rows, already backfilled (`username` equals `user_name`). */
async function backfilledUsers(): Promise<CliSchema> {
  const db = await createCliSchema();
  await db.sql(`CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, username text, email text)`);
  await db.sql(
    `INSERT INTO ${db.schema}.users SELECT g, 'user' || g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 20) g`,
  );
  return db;
}

describe('flagshift CLI: verify and status', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
    await db.sql(
      `CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
    );
    await db.sql(
      `INSERT INTO ${db.schema}.users SELECT g, 'user' || g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 50) g`,
    );
    // A row whose new column disagrees with the old one, and one whose new column is empty.
    await db.sql(`UPDATE ${db.schema}.users SET username = 'drifted' WHERE id = 3`);
    await db.sql(`UPDATE ${db.schema}.users SET username = NULL WHERE id = 9`);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('verify: a mismatch exits 1 and shows the failing rows, redacted unless asked', async () => {
    const { code, stdout } = await db.run('verify', 'users-username', '--raw-values');
    expect(code).toBe(1);
    expect(stdout).toMatch(
      /verification of migration "users-username" FAILED: 50 rows checked, 1 mismatched, 1 missing/,
    );
    expect(stdout).toMatch(/key \[3\]: mismatch\n {4}.*users\.username: has "drifted", expected "user3"/);
    expect(stdout).toMatch(/key \[9\]: missing/);
    const redacted = await db.run('verify', 'users-username');
    expect(redacted.code).toBe(1);
    expect(redacted.stdout).not.toContain('drifted');
  });

  it('status: every migration, with the failed verification counts; a migration whose table is missing is reported inline', async () => {
    const { code, stdout } = await db.run('status');
    // orders-note has no table in this schema: reported, and the exit code says so.
    expect(code).toBe(1);
    expect(stdout).toMatch(
      /migration users-username: users\.user_name becomes users\.username\n {2}stage: +not set in t_\w+\.flags \(processes use the default, off\)/,
    );
    expect(stdout).toMatch(
      /verification: +FAILED \(started .*, finished .*\): 50 rows checked, 1 mismatched, 1 missing/,
    );
    expect(stdout).toMatch(/backfill: +not started/);
    // The gate contract would find: with no stage flag in the table, the stage closes it first.
    expect(stdout).toMatch(
      /contract gate: +closed: .* the stage flag is not set in t_\w+\.flags; every stage before complete .*; and the last verification .* failed: 1 mismatched and 1 missing/,
    );
    expect(stdout).toMatch(/migration orders-note\n {2}error: +table .*orders.* does not exist/);
  });

  it('status: a sync trigger an earlier flagshift created is a refresh, not a missing expand', async () => {
    const old = await backfilledUsers();
    try {
      expect((await old.run('expand', 'users-username')).code).toBe(0);
      const [trigger] = await old.sql<{ tgname: string }>(
        `SELECT tgname FROM pg_trigger WHERE tgrelid = '${old.schema}.users'::regclass AND NOT tgisinternal`,
      );
      const fn = `${old.schema}.${trigger!.tgname}`;
      // As an earlier flagshift created it: no condition.
      await old.sql(
        `CREATE OR REPLACE TRIGGER "${trigger!.tgname}" BEFORE INSERT OR UPDATE ON ${old.schema}.users FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
      );
      const text = await old.run('status', 'users-username');
      expect(text.stdout).toMatch(
        /schema: +expanded; 1 sync trigger\(s\) from an earlier flagshift to replace, so the backfill skips them \(flagshift expand users-username\)\n/,
      );
      const json = await old.run('status', 'users-username', '--json');
      expect(JSON.parse(json.stdout)[0]).toMatchObject({
        expanded: true,
        expandStepsPending: 0,
        syncTriggersToReplace: 1,
      });
      expect((await old.run('expand', 'users-username')).code).toBe(0);
      const after = await old.run('status', 'users-username', '--json');
      expect(JSON.parse(after.stdout)[0]).toMatchObject({
        expanded: true,
        expandStepsPending: 0,
        syncTriggersToReplace: 0,
      });
      expect((await old.run('status', 'users-username')).stdout).toMatch(/schema: +expanded\n/);
    } finally {
      await old.drop();
    }
  });
});

describe('flagshift CLI: verify hints follow the stage', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await backfilledUsers();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('verify: next names the next move from the stage, never a step back', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--stage', 'dualwrite'],
        /next: move the stage to shadow \(flagshift flags set users-username --stage shadow\)/,
      ],
      [['--stage', 'shadow'], /--stage live --percent 1\)/],
      [
        ['--stage', 'live', '--percent', '10'],
        /next: raise the read percentage \(flagshift flags set users-username --percent 50\)/,
      ],
      [['--stage', 'live', '--percent', '100'], /--stage rampdown\)/],
      [['--stage', 'rampdown'], /--stage complete\)/],
      [['--stage', 'complete'], /next: contract \(flagshift contract users-username\)/],
    ];
    for (const [args, hint] of cases) {
      // --force: no backfill ran on this hand-made table.
      expect((await db.run('flags', 'set', 'users-username', ...args, '--force')).code).toBe(0);
      const verify = await db.run('verify', 'users-username');
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stderr).toMatch(hint);
      if (args[1] !== 'dualwrite') expect(verify.stderr).not.toContain('--stage shadow');
    }
  }, 120_000);

  it('verify at complete: a failure does not send the operator to a backfill from the old columns', async () => {
    await db.sql(`UPDATE ${db.schema}.users SET username = 'drifted' WHERE id = 4`);
    const verify = await db.run('verify', 'users-username');
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/at stage complete the new columns are authoritative/);
    expect(verify.stderr).not.toContain('flagshift backfill');
  });
});

describe('flagshift CLI: verify and the NOT NULL contract adds', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await backfilledUsers();
    // Old and new both NULL: new matches forward(old), yet contract's SET NOT NULL would fail.
    await db.sql(`UPDATE ${db.schema}.users SET user_name = NULL, username = NULL WHERE id IN (5, 11)`);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('verify: NULL in a new column contract makes NOT NULL fails, with a count and the first key', async () => {
    const verify = await db.run('verify', 'users-username', '--raw-values');
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(
      /FAILED: 20 rows checked, 0 mismatched, 0 missing, 2 NULL in .*users\.username, which contract makes NOT NULL/,
    );
    expect(verify.stdout).toMatch(
      /users\.username: 2 rows NULL \(first key \[5\]\); contract would fail setting it NOT NULL/,
    );
    // Status and contract name the NULLs as the reason, not only the (zero) mismatches.
    const status = await db.run('status', 'users-username');
    expect(status.stdout).toMatch(/verification:\s+FAILED .*0 mismatched, 0 missing, 2 NULL in \S*users\.username/);
    const contract = await db.run('contract', 'users-username', '--stage', 'complete');
    expect(contract.code).toBe(1);
    expect(contract.stderr).toMatch(
      /0 mismatched and 0 missing of 20 rows checked; 2 NULL in \S*users\.username, which contract makes NOT NULL/,
    );
    await db.sql(
      `UPDATE ${db.schema}.users SET user_name = 'named' || id, username = 'named' || id WHERE username IS NULL`,
    );
    const fixed = await db.run('verify', 'users-username');
    expect(fixed.code, fixed.stdout).toBe(0);
  });
});
