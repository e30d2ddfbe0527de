import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CliSchema, createCliSchema, runCli } from './support/run-cli.js';

// One test at a time: the pools are counted in this process.
describe('flagshift CLI in process: main() leaves nothing behind and reads only what it is given', () => {
  let db: CliSchema;
  const processUrl = process.env['DATABASE_URL'];
  /** Every pool the CLI opened (it names its connections flagshift-cli) and used. */
  const cliPools = new Set<pg.Pool>();
  beforeAll(async () => {
    db = await createCliSchema();
  });
  beforeEach(() => {
    cliPools.clear();
    const query = pg.Pool.prototype.query;
    vi.spyOn(pg.Pool.prototype, 'query').mockImplementation(function (this: pg.Pool, ...args: unknown[]) {
      if (this.options.application_name === 'flagshift-cli') cliPools.add(this);
      return Reflect.apply(query, this, args);
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    if (processUrl === undefined) delete process.env['DATABASE_URL'];
    else process.env['DATABASE_URL'] = processUrl;
  });
  afterAll(async () => {
    await db.drop();
  });

  /** Every pool the CLI opened is ended and holds no connection. */
  function expectPoolsClosed(opened: number): void {
    expect([...cliPools].map((pool) => ({ ended: pool.ended, connections: pool.totalCount }))).toEqual(
      Array.from({ length: opened }, () => ({ ended: true, connections: 0 })),
    );
  }

  it('closes the pool a command opened, on success and on failure', async () => {
    const get = await db.run('flags', 'get', '--json');
    expect(get.code, get.stderr).toBe(0);
    expectPoolsClosed(1);
    const missingTable = await db.run('verify', 'users-username');
    expect(missingTable.code).toBe(1);
    expectPoolsClosed(2);
  });

  it("takes DATABASE_URL from the environment it is given, not from the process's", async () => {
    process.env['DATABASE_URL'] = 'postgres://nobody:secret@127.0.0.1:1/nowhere';
    const given = await db.run('flags', 'get', '--json');
    expect(given.code, given.stderr).toBe(0);

    process.env['DATABASE_URL'] = db.env.DATABASE_URL;
    const none = await runCli([...db.args, 'flags', 'get'], { env: { DATABASE_URL: undefined } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^flagshift: error: no database: pass --database-url <url> or set DATABASE_URL\n$/);
  });
});
