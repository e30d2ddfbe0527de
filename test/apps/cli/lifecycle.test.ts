import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSchema, createCliSchema } from './support/run-cli.js';

async function columnsOf(db: CliSchema, table: string): Promise<string[]> {
  const rows = await db.sql<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
    [db.schema, table],
  );
  return rows.map((row) => row.column_name);
}

/** A CLI schema with `users(id, user_name, email)` holding `rows` users, before any expand. */
async function createUsersSchema(rows: number): Promise<CliSchema> {
  const db = await createCliSchema();
  await db.sql(`CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, email text NOT NULL)`);
  await db.sql(
    `INSERT INTO ${db.schema}.users SELECT g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, $1::int) g`,
    [rows],
  );
  return db;
}

describe('flagshift CLI: the lifecycle on a real server', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createUsersSchema(600);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('expand --dry-run: prints the exact SQL, in order, and changes nothing', async () => {
    const { code, stdout } = await db.run('expand', 'users-username', '--dry-run', '--lock-timeout-ms', '250');
    expect(code).toBe(0);
    expect(stdout).toContain('dry run, nothing was changed');
    expect(stdout).toContain(`ALTER TABLE "${db.schema}"."users" ADD COLUMN IF NOT EXISTS "username" text;`);
    expect(stdout).toContain("SET LOCAL lock_timeout = '250ms';");
    expect(stdout).toMatch(/CREATE TRIGGER .* BEFORE INSERT OR UPDATE ON/);
    // The add-column statement comes before the trigger that refers to the column.
    expect(stdout.indexOf('ADD COLUMN')).toBeLessThan(stdout.indexOf('CREATE TRIGGER'));
    expect(await columnsOf(db, 'users')).toEqual(['id', 'user_name', 'email']);
    const triggers = await db.sql(
      `SELECT 1 FROM pg_trigger WHERE tgrelid = '${db.schema}.users'::regclass AND NOT tgisinternal`,
    );
    expect(triggers).toHaveLength(0);
    const state = await db.sql<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [
      `${db.schema}.events`,
    ]);
    expect(state[0]?.found).toBeNull();
  });

  it('expand, backfill, verify, contract: a full run, with status along the way', async () => {
    const expand = await db.run('expand', 'users-username');
    expect(expand.code, expand.stderr).toBe(0);
    expect(expand.stdout).toMatch(/1\. add column username to .*users \(1 attempt/);
    expect(await columnsOf(db, 'users')).toEqual(['id', 'user_name', 'email', 'username']);

    // The estimate covers the default pause after each batch as well as batches back to back.
    const pre = await db.run('preflight', 'users-username');
    expect(pre.code, pre.stderr).toBe(0);
    expect(pre.stdout).toMatch(
      /\n {2}backfill: {2}about \d+s back to back on an idle server, up to \d+s while it is contended; one worker\n/,
    );

    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    // An old application version writes the old column only; the sync trigger fills the new one.
    await db.sql(`UPDATE ${db.schema}.users SET user_name = 'renamed-7' WHERE id = 7`);

    const backfill = await db.run('backfill', 'users-username', '--batch-size', '50', '--workers', '2');
    expect(backfill.code, backfill.stderr).toBe(0);
    expect(backfill.stdout).toMatch(
      /backfill of migration "users-username" done: pass 1, 600 rows scanned, \d+ changed by 2 workers/,
    );
    // stderr is not a terminal here: plain progress lines instead of a bar.
    expect(backfill.stderr).toMatch(/backfill users-username: 600\/600 rows \(100%\), \S+ rows\/s, eta 0s/);
    const filled = await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${db.schema}.users WHERE username IS DISTINCT FROM user_name`,
    );
    expect(filled[0]?.n).toBe(0);

    const verify = await db.run('verify', 'users-username');
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(
      /verification of migration "users-username" passed: 600 rows checked, 0 mismatched, 0 missing/,
    );

    const atDualwrite = await db.run('contract', 'users-username');
    expect(atDualwrite.code).toBe(1);
    expect(atDualwrite.stderr).toMatch(
      /^flagshift: error: contract of migration "users-username" refused: its stage is "dualwrite"; .* move it on towards complete one stage at a time: next, move the stage to shadow \(flagshift flags set users-username --stage shadow\); or pass --force, which is logged\n$/,
    );
    // status shows the gate contract just found closed, for the same reason.
    const gateAtDualwrite = await db.run('status', 'users-username', '--json');
    expect(JSON.parse(gateAtDualwrite.stdout)[0].contractGate).toMatchObject({ open: false, closedBy: 'stage' });

    // Straight to complete, past the promotion gate (no process compared anything here;
    // the gate has its own tests in flags.test.ts).
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'complete', '--force')).code).toBe(0);
    const status = await db.run('status', 'users-username');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('users.user_name becomes users.username');
    expect(status.stdout).toMatch(/stage: +complete \(set /);
    expect(status.stdout).toMatch(/schema: +expanded/);
    expect(status.stdout).toMatch(/backfill: +done, pass 1: 600\/600 rows \(100%\)/);
    expect(status.stdout).toMatch(
      /verification: +passed \(started .*, finished .*\): 600 rows checked, 0 mismatched, 0 missing/,
    );
    // The stage changed after the verification: the gate wants a fresh one.
    expect(status.stdout).toMatch(/contract gate: +closed: .* started before the last write-path change/);

    const stale = await db.run('contract', 'users-username');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(
      /^flagshift: error: contract of migration "users-username" refused: the last verification .* verify again/,
    );
    expect(stale.stderr.trimEnd().split('\n')).toHaveLength(1);

    expect((await db.run('verify', 'users-username')).code).toBe(0);
    const contract = await db.run('contract', 'users-username');
    expect(contract.code, contract.stderr).toBe(0);
    expect(contract.stdout).toMatch(/drop old column user_name of .*users \(1 attempt/);
    expect(await columnsOf(db, 'users')).toEqual(['id', 'email', 'username']);
    const notNull = await db.sql<{ attnotnull: boolean }>(
      `SELECT attnotnull FROM pg_attribute WHERE attrelid = '${db.schema}.users'::regclass AND attname = 'username'`,
    );
    expect(notNull[0]?.attnotnull).toBe(true);

    // Run again after the contract: nothing to do, and said so.
    const verifyAgain = await db.run('verify', 'users-username');
    expect(verifyAgain.code, verifyAgain.stderr).toBe(0);
    expect(verifyAgain.stdout).toMatch(
      /^migration "users-username" is already contracted \(at .*\): its old columns are gone, so there is nothing to verify\n$/,
    );
    const contractAgain = await db.run('contract', 'users-username');
    expect(contractAgain.code, contractAgain.stderr).toBe(0);
    expect(contractAgain.stdout).toMatch(
      /^migration "users-username" is already contracted \(at .*\): .*nothing to do\n$/,
    );

    const after = await db.run('status', 'users-username', '--json');
    expect(JSON.parse(after.stdout)).toEqual([
      expect.objectContaining({
        migration: 'users-username',
        stage: 'complete',
        expanded: true,
        contractedAt: expect.any(String),
        verification: expect.objectContaining({ passed: true, checkedRows: 600, mismatchedRows: 0 }),
      }),
    ]);
  });
});

describe('flagshift CLI: contract at a stage other than complete', () => {
  const setUp = async (): Promise<CliSchema> => {
    const db = await createCliSchema();
    await db.sql(`CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, email text NOT NULL)`);
    await db.sql(
      `INSERT INTO ${db.schema}.users SELECT g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 20) g`,
    );
    expect((await db.run('expand', 'users-username')).code).toBe(0);
    expect((await db.run('backfill', 'users-username')).code).toBe(0);
    return db;
  };
  const eventKinds = async (db: CliSchema) =>
    (await db.sql<{ kind: string }>(`SELECT kind FROM ${db.schema}.events ORDER BY id`)).map((row) => row.kind);
  const schemas: CliSchema[] = [];
  afterAll(async () => {
    for (const db of schemas) await db.drop();
  });

  it('--force records one force event, with who ran it', async () => {
    const db = await setUp();
    schemas.push(db);
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    expect((await db.run('verify', 'users-username')).code).toBe(0);
    const disagreeing = await db.run('contract', 'users-username', '--stage', 'complete');
    expect(disagreeing.code).toBe(2);
    expect(disagreeing.stderr).toMatch(/--stage complete disagrees with its stage flag in .* \("dualwrite"\)/);

    const forced = await db.run('contract', 'users-username', '--force', '--json');
    expect(forced.code, forced.stderr).toBe(0);
    // The warning goes to stderr with --json too, and the report says the gate was overridden.
    expect(forced.stderr).toMatch(/overridden with --force \(logged\): .* its stage is "dualwrite"/);
    expect(JSON.parse(forced.stdout)).toMatchObject({
      phase: 'contract',
      forced: true,
      gate: { open: false, closedBy: 'stage', reason: expect.stringContaining('its stage is "dualwrite"') },
    });
    expect(await columnsOf(db, 'users')).toEqual(['id', 'email', 'username']);
    expect((await eventKinds(db)).filter((kind) => kind !== 'backfill')).toEqual([
      'expand',
      'stage',
      'verify',
      'force',
      'contract',
    ]);
    const [force] = await db.sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM ${db.schema}.events WHERE kind = 'force'`,
    );
    expect(force?.details).toMatchObject({
      action: 'contract',
      overridden: expect.stringContaining('its stage is "dualwrite"'),
      actor: expect.stringContaining('(flagshift CLI)'),
    });
  });

  it('a stage flag kept in another flag system: --stage complete says where the applications are', async () => {
    const db = await setUp();
    schemas.push(db);
    expect((await db.run('verify', 'users-username')).code).toBe(0);
    const unknown = await db.run('contract', 'users-username');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /refused: no stage given; .* its stage flag is not in .*flags: once every application is at stage complete, pass --stage complete \(or --force, which is logged\)/,
    );
    const atLive = await db.run('contract', 'users-username', '--stage', 'live');
    expect(atLive.code).toBe(1);
    // The stage is the operator's word for a flag elsewhere: the hint points there, not at the table.
    expect(atLive.stderr).toMatch(
      /refused: its stage is "live"; .*; move every application to complete in your flag system first, then pass --stage complete \(or --force, which is logged\)\n$/,
    );
    expect(atLive.stderr).not.toContain('flags set');
    expect(await columnsOf(db, 'users')).toEqual(['id', 'user_name', 'email', 'username']);

    const contracted = await db.run('contract', 'users-username', '--stage', 'complete');
    expect(contracted.code, contracted.stderr).toBe(0);
    expect(await columnsOf(db, 'users')).toEqual(['id', 'email', 'username']);
    expect(await eventKinds(db)).not.toContain('force');
  });

  it('status and contract --force --dry-run say what the operator sees: an unset stage flag, a 50% sample, nothing logged', async () => {
    const db = await setUp();
    schemas.push(db);
    expect((await db.run('verify', 'users-username', '--sample', '50%')).code).toBe(0);
    const status = await db.run('status', 'users-username');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(
      /verification: +passed \(started .*, finished .*\): \d+ rows checked \(a 50% sample\), 0 mismatched/,
    );
    expect(status.stdout).toMatch(
      new RegExp(
        `contract gate: +closed: .* refused: the stage flag is not set in ${db.schema}\\.flags; .*; and the last verification .* checked a 50% sample; contract needs one over every row`,
      ),
    );
    expect(status.stdout).not.toMatch(/no stage given|sample \(0\.5\)/);
    const json = JSON.parse((await db.run('status', 'users-username', '--json')).stdout) as [
      { contractGate: { reason: string } },
    ];
    expect(json[0].contractGate.reason).toContain(`the stage flag is not set in ${db.schema}.flags`);

    const dryRun = await db.run('contract', 'users-username', '--force', '--dry-run');
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stderr).toMatch(/warning: the contract gate is closed and would be overridden with --force/);
    expect(dryRun.stderr).not.toContain('(logged)');
    expect(await eventKinds(db)).not.toContain('force');
  });

  it('an invalid stage value in the flags table: named, and not overridden by --stage', async () => {
    const db = await setUp();
    schemas.push(db);
    expect((await db.run('verify', 'users-username')).code).toBe(0);
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    await db.sql(`UPDATE ${db.schema}.flags SET value = '"sideways"' WHERE key = 'flagshift.users-username.stage'`);
    const refused = await db.run('contract', 'users-username');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/its stage flag in .*flags holds an invalid value \("sideways"\): set it/);
    const overriding = await db.run('contract', 'users-username', '--stage', 'complete');
    expect(overriding.code).toBe(2);
    expect(overriding.stderr).toMatch(/holds an invalid value \("sideways"\), which --stage can't override/);
    expect(await columnsOf(db, 'users')).toEqual(['id', 'user_name', 'email', 'username']);
  });
});

describe('flagshift CLI: backfill before expand', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
    await db.sql(`CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, email text NOT NULL)`);
    await db.sql(`INSERT INTO ${db.schema}.users VALUES (1, 'ada', 'ada@example.com')`);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('is refused before it writes anything: no state tables, no checkpoint', async () => {
    const { code, stderr } = await db.run('backfill', 'users-username');
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /column "?.*users\.username"? named by migration "users-username" does not exist; run expand/,
    );
    const tables = await db.sql<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      [db.schema],
    );
    expect(tables.map((row) => row.table_name)).toEqual(['users']);
  });
});

describe('flagshift CLI: backfill at stage complete', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createUsersSchema(20);
    expect((await db.run('expand', 'users-username')).code).toBe(0);
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    expect((await db.run('backfill', 'users-username')).code).toBe(0);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('backfill: refused at complete, where the new columns are authoritative, unless --force (logged)', async () => {
    // Past the promotion gate: the backfill's behaviour per stage is under test here.
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'rampdown', '--force')).code).toBe(0);
    const atRampdown = await db.run(
      'backfill',
      'users-username',
      '--no-preflight',
      '--verbose',
      '--pause-ratio',
      '2.5',
      '--delay-ms',
      '1',
    );
    expect(atRampdown.code, atRampdown.stderr).toBe(0);
    // The worker's pass event says how it paces its batches.
    expect(atRampdown.stderr).toMatch(
      /\[backfill-pass\] started pass \d+: .* rows; batches of about 10 ms, each followed by a pause of 2\.5x its time \+ 1 ms\n/,
    );

    expect((await db.run('flags', 'set', 'users-username', '--stage', 'complete', '--force')).code).toBe(0);
    const refused = await db.run('backfill', 'users-username', '--no-preflight');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^flagshift: error: backfill of migration "users-username" at stage complete: the new columns are authoritative .* could overwrite them; refused: pass --force to run it anyway\n$/,
    );
    // A forced command refused for a bad option runs nothing and logs no override.
    const badReplica = await db.run(
      'backfill',
      'users-username',
      '--no-preflight',
      '--force',
      '--replica',
      'mysql://replica/app',
    );
    expect(badReplica.code).toBe(2);
    expect(badReplica.stderr).toMatch(
      /^flagshift: error: --replica "mysql:\/\/replica\/app" is not a PostgreSQL URL\n$/,
    );
    expect(await db.sql(`SELECT 1 FROM ${db.schema}.events WHERE kind = 'force'`)).toEqual([]);
    const forced = await db.run('backfill', 'users-username', '--no-preflight', '--force', '--verbose');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(
      /\[backfill-pass\] started pass \d+: .* a pause of up to 1x its time while the server is contended\n/,
    );
    expect(forced.stderr).toMatch(/^warning: backfill of migration "users-username" at stage complete: /);
    const force = await db.sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM ${db.schema}.events WHERE kind = 'force'`,
    );
    expect(force.map((event) => event.details['action'])).toEqual(['backfill']);
  }, 60_000);
});
