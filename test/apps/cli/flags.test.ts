import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSchema, createCliSchema, publishComparisons } from './support/run-cli.js';

describe('flagshift CLI: flags', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('flags get/set/kill: a roundtrip through the flags table, logged as stage events', async () => {
    const unset = await db.run('flags', 'get', '--json');
    expect(unset.code).toBe(0);
    // In name order.
    expect(JSON.parse(unset.stdout)).toEqual([
      expect.objectContaining({ migration: 'orders-note', stage: null, defaultStage: 'dualwrite' }),
      expect.objectContaining({ migration: 'users-username', stage: null, percent: null, defaultStage: 'off' }),
    ]);

    const set = await db.run(
      'flags',
      'set',
      'users-username',
      '--stage',
      'live',
      '--percent',
      '12.5',
      '--reason',
      'canary',
      // Nothing compared it yet: the gate is the subject of the tests below.
      '--force',
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^users-username: stage unset .* -> stage live, read 12\.5%\n$/);
    const stored = await db.sql<{ key: string; value: unknown; updated_by: string }>(
      `SELECT key, value, updated_by FROM ${db.schema}.flags ORDER BY key`,
    );
    expect(stored.map(({ key, value }) => [key, value])).toEqual([
      ['flagshift.users-username.read-percent', 12.5],
      ['flagshift.users-username.stage', 'live'],
    ]);
    expect(stored[0]?.updated_by).toMatch(/\(flagshift CLI\)$/);

    const get = await db.run('flags', 'get', 'users-username');
    expect(get.stdout).toMatch(/^users-username {2}stage live, read 12\.5% {2}\(changed .* by .*\)\n$/);

    const kill = await db.run('flags', 'kill', 'users-username', '--reason', 'mismatches');
    expect(kill.code).toBe(0);
    expect(kill.stdout).toContain('killed: stage live, read 12.5% -> stage dualwrite, read 0%');
    const again = await db.run('flags', 'kill', 'users-username');
    expect(again.stdout).toContain('reads already come from the old columns; nothing changed');

    const events = await db.sql<{ kind: string; details: Record<string, unknown> }>(
      `SELECT kind, details FROM ${db.schema}.events WHERE migration = 'users-username' ORDER BY id`,
    );
    expect(events.map((event) => [event.kind, event.details['action'], event.details['reason']])).toEqual([
      ['stage', 'set', 'canary'],
      ['stage', 'kill', 'mismatches'],
    ]);
    expect(events[0]!.details).toMatchObject({
      forced: true,
      overridden: [expect.stringMatching(/^not enough evidence yet: 0 of 1000 comparisons published/)],
    });
  });

  it('flags set: leaving complete needs --force; nothing to set is a usage error', async () => {
    expect((await db.run('flags', 'set', 'orders-note', '--stage', 'complete', '--force')).code).toBe(0);
    const back = await db.run('flags', 'set', 'orders-note', '--stage', 'live');
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(
      /^flagshift: error: moving migration "orders-note" from complete to live 0% refused: .* or pass --force, which is logged\n$/,
    );
    const kill = await db.run('flags', 'kill', 'orders-note');
    expect(kill.code).toBe(1);
    expect(kill.stderr).toMatch(/is complete: the old columns no longer receive writes/);
    const forced = await db.run('flags', 'set', 'orders-note', '--stage', 'rampdown', '--force');
    expect(forced.code).toBe(0);
    const nothing = await db.run('flags', 'set', 'orders-note');
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toBe('flagshift: error: give --stage <stage> and/or --percent <p>\n');
  });
});

describe('flagshift CLI: flags set refuses moves the schema or the backfill cannot carry', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
    await db.sql(
      `CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text NOT NULL, email text NOT NULL)`,
    );
    await db.sql(
      `INSERT INTO ${db.schema}.users SELECT g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 30) g`,
    );
  });
  afterAll(async () => {
    await db.drop();
  });
  const stage = async () => {
    const [table] = await db.sql<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [
      `${db.schema}.flags`,
    ]);
    if (table?.found === null) return undefined;
    const rows = await db.sql<{ value: unknown }>(`SELECT value FROM ${db.schema}.flags WHERE key LIKE '%.stage'`);
    return rows[0]?.value;
  };

  it('before expand: a stage that writes the new columns is refused, naming them and expand', async () => {
    const refused = await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^flagshift: error: moving migration "users-username" from off to dualwrite refused: the new column .*users\.username does not exist yet, .* run flagshift expand users-username first; or pass --force, which is logged\n$/,
    );
    expect(await stage()).toBeUndefined();
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'off')).code).toBe(0);
  });

  it('the target stage is checked whatever the default: dualwrite by default, before expand, is refused', async () => {
    await db.sql(`CREATE TABLE ${db.schema}.orders (id integer PRIMARY KEY, remark text)`);
    const refused = await db.run('flags', 'set', 'orders-note', '--stage', 'dualwrite');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^flagshift: error: moving migration "orders-note" from dualwrite to dualwrite refused: the new column .*orders\.note does not exist yet, and stage dualwrite writes it: .* run flagshift expand orders-note first; or pass --force, which is logged\n$/,
    );
    const [flags] = await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${db.schema}.flags WHERE key LIKE 'flagshift.orders-note.%'`,
    );
    expect(flags?.n).toBe(0);
  });

  it('before the backfill finished: dualwrite goes, a stage that reads new is refused', async () => {
    expect((await db.run('expand', 'users-username')).code).toBe(0);
    const live = await db.run('flags', 'set', 'users-username', '--stage', 'live', '--percent', '100');
    expect(live.code).toBe(1);
    expect(live.stderr).toMatch(
      /from off to live 100% refused: the backfill has not started, .*flagshift backfill users-username first/,
    );
    expect(await stage()).toBe('off');
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'shadow')).code).toBe(1);
    const forced = await db.run('flags', 'set', 'users-username', '--stage', 'shadow', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/^warning: overridden with --force \(logged\): .*the backfill has not started/);
    // Stepping back is never held up by the backfill.
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    expect((await db.run('backfill', 'users-username')).code).toBe(0);
    const shadow = await db.run('flags', 'set', 'users-username', '--stage', 'shadow');
    expect(shadow.code, shadow.stderr).toBe(0);
  });

  it('promotion gate: live needs the comparisons the fleet published since the last stage change', async () => {
    const early = await db.run('flags', 'set', 'users-username', '--stage', 'live', '--percent', '10');
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(
      /^flagshift: error: moving migration "users-username" from shadow to live 10% refused: not enough evidence yet: 0 of 1000 comparisons since \d\d:\d\d:\d\d UTC; 0 mismatches .*; or pass --force, which is logged\n$/,
    );
    await publishComparisons(db, 'users-username', 400);
    const partial = await db.run('flags', 'set', 'users-username', '--stage', 'live', '--percent', '10');
    expect(partial.stderr).toMatch(/400 of 1000 comparisons since .* UTC; 0 mismatches/);
    await publishComparisons(db, 'users-username', 1000, 2);
    const mismatched = await db.run('flags', 'set', 'users-username', '--stage', 'live', '--percent', '10');
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toMatch(/1400 of 1000 comparisons .*; 2 mismatches: a mismatch rate of 0\.143% is above/);
    expect(await stage()).toBe('shadow');
    // Moving back is never held; the comparisons count again from that change.
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'dualwrite')).code).toBe(0);
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'shadow')).code).toBe(0);
    await publishComparisons(db, 'users-username', 1000);
    const live = await db.run('flags', 'set', 'users-username', '--stage', 'live', '--percent', '10');
    expect(live.code, live.stderr).toBe(0);
    expect(live.stderr).toMatch(/^gate: 1000 of 1000 comparisons since .* UTC; 0 mismatches\n$/);
    const json = await db.run(
      'flags',
      'set',
      'users-username',
      '--percent',
      '50',
      '--force',
      '--reason',
      'on-call',
      '--json',
    );
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ after: { stage: 'live', percent: 50 } });
    expect(json.stderr).toMatch(
      /^warning: overridden with --force \(logged\): moving migration "users-username" from live 10% to live 50%: not enough evidence yet: 0 of 1000/,
    );
  });

  it('leaving complete: rampdown goes while the sync triggers run; a stage that reads old needs --force', async () => {
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'complete', '--force')).code).toBe(0);
    const rampdown = await db.run('flags', 'set', 'users-username', '--stage', 'rampdown');
    expect(rampdown.code, rampdown.stderr).toBe(0);
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'complete', '--force')).code).toBe(0);
    const live = await db.run('flags', 'set', 'users-username', '--stage', 'live');
    expect(live.code).toBe(1);
    expect(live.stderr).toMatch(
      /from complete to live \d+% refused: stage live reads the old columns, .* step back to rampdown first .*; or pass --force, which is logged\n$/,
    );
    const plan = await db.run('plan', 'users-username');
    expect(plan.stdout).toMatch(/back to rampdown: safe while the sync triggers run .*needs no --force/);
  });

  it('after contract: a stage that reads or writes the dropped old columns is refused', async () => {
    expect((await db.run('flags', 'set', 'users-username', '--stage', 'complete', '--force')).code).toBe(0);
    expect((await db.run('verify', 'users-username')).code).toBe(0);
    expect((await db.run('contract', 'users-username')).code).toBe(0);
    const back = await db.run('flags', 'set', 'users-username', '--stage', 'rampdown');
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(
      /from complete to rampdown refused: the old column .*users\.user_name is gone \(contract dropped it\), .*every application read or write would fail; a contracted migration stays at complete; or pass --force/,
    );
    expect(await stage()).toBe('complete');
  });
});
