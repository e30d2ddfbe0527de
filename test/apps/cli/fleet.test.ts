/**
 * `flagshift fleet run|status` on the real server: a shard and tenant schemas, a tenant
 * that fails alone, and the status read back by another command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from '../../support/pg-connections.js';
import { type CliSchema, createCliSchema, PROCESS_TEST_TIMEOUT_MS, spawnCli } from './support/run-cli.js';

const CRASH_ROWS = 3000;

describe('flagshift fleet', () => {
  let db: CliSchema;
  const tenants = ['acme', 'globex', 'initech', 'crashco'];
  const schemaOf = (tenant: string) => `${db.schema}_${tenant}`;

  beforeAll(async () => {
    db = await createCliSchema();
    // The shard: the migration's own table, in the test schema.
    await db.sql(`CREATE TABLE ${db.schema}.users (id int PRIMARY KEY, user_name text, email text NOT NULL)`);
    await db.sql(`INSERT INTO ${db.schema}.users SELECT g, 'u' || g, 'e' FROM generate_series(1, 80) g`);
    for (const tenant of tenants) {
      await db.sql(`CREATE SCHEMA ${schemaOf(tenant)}`);
      // globex's table is missing: its expand fails, and only globex stops.
      if (tenant === 'globex') continue;
      await db.sql(`CREATE TABLE ${schemaOf(tenant)}.users (id int PRIMARY KEY, user_name text, email text NOT NULL)`);
      await db.sql(`INSERT INTO ${schemaOf(tenant)}.users SELECT g, 't' || g, 'e' FROM generate_series(1, $1::int) g`, [
        tenant === 'crashco' ? CRASH_ROWS : 40,
      ]);
    }
  });

  afterAll(async () => {
    for (const tenant of tenants) {
      await db.sql(`DROP SCHEMA IF EXISTS ${schemaOf(tenant)} CASCADE`);
      await db.sql(`DROP SCHEMA IF EXISTS flagshift_${schemaOf(tenant)} CASCADE`);
    }
    await db.drop();
  });

  const members = () => [
    '--shard',
    `main=${testDatabaseUrl()}`,
    ...['acme', 'globex', 'initech'].flatMap((tenant) => ['--tenant', `${tenant}=${schemaOf(tenant)}`]),
  ];

  it('run: the canary shard first, every tenant through verify but the broken one; exit 1 naming it', async () => {
    const { code, stdout, stderr } = await db.run(
      'fleet',
      'run',
      'users-username',
      ...members(),
      '--concurrency',
      '2',
      '--pause-ratio',
      '0',
    );
    expect(code, stderr).toBe(1);
    expect(stdout).toContain('migration users-username across 4 members (canary main)');
    expect(stdout).toMatch(/ {2}main {5}ready: expand, backfill, verify done; next contract\n/);
    expect(stdout).toMatch(/ {2}acme {5}ready: expand, backfill, verify done; next contract\n/);
    expect(stdout).toMatch(/ {2}globex {3}failed: nothing done; next expand \(table .*_globex\.users does not exist\)/);
    expect(stdout).toMatch(/ {2}initech {2}ready: expand, backfill, verify done; next contract\n/);
    // Progress went to stderr, the canary's first.
    expect(stderr.split('\n')[0]).toMatch(/^ {2}main: running/);
    const filled = await db.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schemaOf('acme')}.users WHERE username = user_name`,
    );
    expect(filled[0]!.n).toBe(40);
  });

  it('status --json: every member as its own state tables say, with the failure reason', async () => {
    const { code, stdout, stderr } = await db.run('--json', 'fleet', 'status', 'users-username', ...members());
    expect(code, stderr).toBe(0);
    const status = JSON.parse(stdout) as {
      members: { member: string; state: string; next?: string; reason?: string }[];
    };
    expect(status.members.map((m) => [m.member, m.state, m.next])).toEqual([
      ['main', 'ready', 'contract'],
      ['acme', 'ready', 'contract'],
      ['globex', 'failed', 'expand'],
      ['initech', 'ready', 'contract'],
    ]);
    expect(status.members[2]!.reason).toMatch(/does not exist/);
  });

  it('refuses a fleet without members, and a malformed member', async () => {
    const none = await db.run('fleet', 'status', 'users-username');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('a fleet needs members');
    const bad = await db.run('fleet', 'run', 'users-username', '--shard', 'eu');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('a shard is name=postgres://');
    const unparseable = await db.run(
      'fleet',
      'run',
      'users-username',
      '--shard',
      'eu=postgres://ops:s3cret@[db/app?password=s3cret',
    );
    expect(unparseable.code).not.toBe(0);
    expect(unparseable.stderr).toContain('shard "eu": "postgres://ops:***@[db/app?password=***" is not a URL');
    expect(unparseable.stderr).not.toContain('s3cret');
  });

  it(
    'a coordinator killed during a backfill: the next run resumes the same pass and finishes it',
    async () => {
      const crashco = ['--tenant', `crashco=${schemaOf('crashco')}`];
      const state = `flagshift_${schemaOf('crashco')}`;
      const args = [...db.args, 'fleet', 'run', 'users-username', ...crashco, '--coordinator', 'ops-1'];
      // Long pauses between batches, so the run is still in its backfill when the rows
      // below are seen, however fast the batches are and however busy the machine.
      const child = spawnCli([...args, '--batch-size', '20', '--pause-ratio', '20'], { env: db.env });
      child.stdin.end();
      child.stdout.resume();
      child.stderr.resume();
      const exited = new Promise((resolve) => child.on('close', resolve));
      try {
        // Killed once its backfill has done some batches, but not all.
        for (;;) {
          const done = await db
            .sql<{ n: number }>(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM ${state}.backfill_ranges`)
            .catch(() => [{ n: 0 }]);
          if (done[0]!.n >= 100) break;
          if (child.exitCode !== null)
            throw new Error(`the coordinator ended before it was killed (${child.exitCode})`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      const before = await db.run('--json', 'fleet', 'status', 'users-username', ...crashco);
      const member = (
        JSON.parse(before.stdout) as { members: { state: string; next: string; backfill: { rowsDone: number } }[] }
      ).members[0]!;
      expect([member.state, member.next]).toEqual(['running', 'backfill']);
      expect(member.backfill.rowsDone).toBeLessThan(CRASH_ROWS);

      const after = await db.run(
        'fleet',
        'run',
        'users-username',
        ...crashco,
        '--coordinator',
        'ops-1',
        '--pause-ratio',
        '0',
      );
      expect(after.code, after.stderr).toBe(0);
      expect(after.stdout).toMatch(/crashco {2}ready: expand, backfill, verify done; next contract/);
      const checkpoint = await db.sql<{ pass: number; rows_done: number }>(
        `SELECT pass, rows_done::int AS rows_done FROM ${state}.backfill_checkpoints`,
      );
      const ranges = await db.sql<{ n: number }>(`SELECT sum(rows_done)::int AS n FROM ${state}.backfill_ranges`);
      expect(checkpoint.map((row) => row.pass)).toEqual([1]);
      expect(ranges[0]!.n).toBe(CRASH_ROWS);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
