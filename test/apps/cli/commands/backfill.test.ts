/**
 * `flagshift backfill` yields to the database's health: its limits are options, and the
 * operator reads why it paused and that it resumed.
 */
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../../apps/cli/main.js';
import { testDatabaseUrl } from '../../../support/pg-connections.js';
import { type CliSchema, cliEnv, createCliSchema, root } from '../support/run-cli.js';

class Collected extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('flagshift backfill: yielding to the database', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
    await db.sql(`CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, email text NOT NULL)`);
    await db.sql(
      `INSERT INTO ${db.schema}.users SELECT g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 300) g`,
    );
    expect((await db.run('expand', 'users-username')).code).toBe(0);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('--max-transaction-age-ms: prints "paused:" with the reason while a transaction is open, then "resumed"', async () => {
    const reader = new pg.Client({ connectionString: testDatabaseUrl() });
    await reader.connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query(`SELECT count(*) FROM ${db.schema}.users`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      const stdout = new Collected();
      const stderr = new Collected();
      const args = [...db.args, 'backfill', 'users-username', '--no-preflight'];
      const limits = ['--max-transaction-age-ms', '200', '--health-check-ms', '20', '--max-lock-wait-ms', '0'];
      const running = main([...args, ...limits], { stdout, stderr }, cliEnv(db.env), root);
      await expect.poll(() => stderr.text, { timeout: 20_000 }).toMatch(/paused/);
      expect(stderr.text).toMatch(/^backfill users-username paused: oldest transaction \d+ ms > 200 ms$/m);
      const [filled] = await db.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${db.schema}.users WHERE username IS NOT NULL`,
      );
      expect(filled!.n).toBe(0);
      await reader.query('COMMIT');
      expect(await running, stderr.text).toBe(0);
      expect(stderr.text).toMatch(/^backfill users-username resumed$/m);
      expect(stdout.text).toMatch(/backfill of migration "users-username" done: pass 1, 300 rows scanned/);
    } finally {
      await reader.end();
    }
  });

  it('--max-replica-lag-ms and --replica are checked before anything runs', async () => {
    const badLag = await db.run('backfill', 'users-username', '--max-replica-lag-ms', '-1');
    expect(badLag.code).toBe(2);
    expect(badLag.stderr).toMatch(/--max-replica-lag-ms must be a whole number from 0 to 3600000/);
    const badUrl = await db.run('backfill', 'users-username', '--no-preflight', '--replica', 'mysql://replica/app');
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/--replica "mysql:\/\/replica\/app" is not a PostgreSQL URL/);
    const secret = await db.run(
      'backfill',
      'users-username',
      '--no-preflight',
      '--replica',
      'mysql://replica/app?password=s3cret&sslpassword=k3y',
    );
    expect(secret.code).toBe(2);
    expect(secret.stderr).toMatch(
      /--replica "mysql:\/\/replica\/app\?password=\*\*\*&sslpassword=\*\*\*" is not a PostgreSQL URL/,
    );
    expect(secret.stderr).not.toMatch(/s3cret|k3y/);
  });
});
