/**
 * `flagshift fleet run|status` on the real server: a shard and tenant schemas, a tenant
 * that fails alone, and the status read back by another command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from '../../support/pg-connections.js';
import { type CliSchema, createCliSchema } from './support/run-cli.js';

describe('flagshift fleet', () => {
  let db: CliSchema;
  const tenants = ['acme', 'globex', 'initech'];
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
      await db.sql(`INSERT INTO ${schemaOf(tenant)}.users SELECT g, 't' || g, 'e' FROM generate_series(1, 40) g`);
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
    ...tenants.flatMap((tenant) => ['--tenant', `${tenant}=${schemaOf(tenant)}`]),
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
  });
});
