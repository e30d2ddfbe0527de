import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from '../../support/pg-connections.js';
import {
  type CliSchema,
  createCliSchema,
  fixtureModule,
  PROCESS_TEST_TIMEOUT_MS,
  root,
  runCli,
  runCliProcess,
} from './support/run-cli.js';

/** Exactly one line on stderr, in the CLI's error format, and no stack trace. */
function expectOneErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^flagshift: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe.concurrent('flagshift CLI: help and wrong input', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('help: lists every command with a description, the lifecycle in order and the exit codes', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    const stdout = result.stdout.replace(/\s+/g, ' ');
    for (const command of ['plan', 'expand', 'backfill', 'verify', 'status', 'contract', 'flags']) {
      expect(stdout).toMatch(new RegExp(` ${command} (\\[options\\] )?(<migration>|\\[migration\\])? ?[a-z]`));
    }
    expect(stdout).toContain('--database-url <url>');
    expect(stdout).toContain('(env: DATABASE_URL)');
    expect(stdout).toContain('flagshift expand users-username --dry-run');
    expect(stdout).toContain('npm run flagshift -- <args>');
    expect(stdout).toMatch(/Exit codes: 0 success, 1 failure/);
  });

  it('help: a command explains its options and shows examples', async () => {
    const backfill = await runCli(['backfill', '--help']);
    expect(backfill.code).toBe(0);
    expect(backfill.stdout).toContain('-w, --workers <n>');
    expect(backfill.stdout).toContain('--target-ms <ms>');
    expect(backfill.stdout).toContain('--pause-ratio <r>');
    expect(backfill.stdout).toContain('flagshift backfill users-username --workers 4');
    const set = await runCli(['flags', 'set', '--help']);
    expect(set.stdout.replace(/\s+/g, ' ')).toContain(
      '(choices: "off", "dualwrite", "shadow", "live", "rampdown", "complete")',
    );
  });

  it("help <command> <subcommand>: the subcommand's help, exit 0; help alone exits 0 like --help", async () => {
    const set = await runCli(['help', 'flags', 'set']);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^Usage: flagshift flags set \[options\] <migration>/);
    expect(set.stdout).toContain('-p, --percent <p>');
    const help = await runCli(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe((await runCli(['--help'])).stdout);
    const unknown = await runCli(['help', 'flags', 'sett']);
    expect(unknown.code).toBe(2);
    expectOneErrorLine(unknown.stderr, /unknown command 'flags sett'/);
  });

  it("--version and -V print package.json's version, exit 0", async () => {
    const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      expect({ flag, code: result.code, stdout: result.stdout }).toEqual({ flag, code: 0, stdout: `${version}\n` });
    }
  });

  it(
    'a reader that stops reading (| head): the CLI exits 141, as SIGPIPE ends other tools, without a word on stderr',
    async () => {
      const piped = await createCliSchema();
      try {
        await piped.sql(`CREATE TABLE ${piped.schema}.users (id integer PRIMARY KEY, user_name text, email text)`);
        for (const [args, closeOutput] of [
          [['plan', 'users-username'], 'stdout'],
          [['expand', 'users-username', '--dry-run'], 'stdout'],
          [['expand', 'users-username', '--dry-run'], 'both'],
          [['plan', '--help'], 'stdout'],
        ] as const) {
          const { code, stderr } = await runCliProcess([...piped.args, ...args], { env: piped.env, closeOutput });
          expect({ args, closeOutput, code, stderr }).toEqual({ args, closeOutput, code: 141, stderr: '' });
        }
      } finally {
        await piped.drop();
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it('unknown migration: one line listing the known ones, exit 2', async () => {
    const { code, stderr, stdout } = await db.run('plan', 'users-name');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expectOneErrorLine(stderr, /unknown migration "users-name"; known: orders-note, users-username$/);
  });

  it('bad connection string: one line naming the server, password hidden, exit 1', async () => {
    const refused = await runCli([
      '--migrations',
      fixtureModule,
      'status',
      '--database-url',
      'postgres://ops:s3cret@127.0.0.1:1/app',
    ]);
    expect(refused.code).toBe(1);
    expectOneErrorLine(
      refused.stderr,
      /cannot connect to postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app: connect ECONNREFUSED/,
    );
    expect(refused.stderr).not.toContain('s3cret');

    const notPostgres = await runCli([
      '--migrations',
      fixtureModule,
      'status',
      '--database-url',
      'mysql://ops:s3cret@db/app',
    ]);
    expect(notPostgres.code).toBe(2);
    expectOneErrorLine(notPostgres.stderr, /is not a PostgreSQL URL/);
    expect(notPostgres.stderr).not.toContain('s3cret');

    // libpq takes secrets from the query string too: `password`, `sslpassword`.
    const inQuery = await runCli([
      '--migrations',
      fixtureModule,
      'status',
      '--database-url',
      'postgres://ops@127.0.0.1:1/app?sslmode=disable&password=s3cret&sslpassword=k3y',
    ]);
    expect(inQuery.code).toBe(1);
    expectOneErrorLine(
      inQuery.stderr,
      /cannot connect to postgres:\/\/ops@127\.0\.0\.1:1\/app\?sslmode=disable&password=\*\*\*&sslpassword=\*\*\*: connect ECONNREFUSED/,
    );
    for (const url of [
      'mysql://db/app?password=s3cret&sslpassword=k3y',
      'postgres://ops:s3cret@[db/app?sslpassword=k3y',
      // libpq's key=value form, a quoted value with a space and an escaped quote in it.
      "host=db password='s3cret p4\\'ss' sslpassword=k3y",
    ]) {
      const refusedUrl = await runCli(['--migrations', fixtureModule, 'status', '--database-url', url]);
      expect(refusedUrl.code).toBe(2);
      expectOneErrorLine(refusedUrl.stderr, /is not a PostgreSQL URL/);
      expect(refusedUrl.stderr).not.toMatch(/s3cret|p4|k3y/);
    }

    const wrongDatabase = await runCli(['--migrations', fixtureModule, 'status'], {
      env: { DATABASE_URL: testDatabaseUrl().replace(/\/[^/]*$/, '/no_such_db') },
    });
    expect(wrongDatabase.code).toBe(1);
    expectOneErrorLine(wrongDatabase.stderr, /database "no_such_db" does not exist/);
  });

  it('no database configured: one line saying how to give one', async () => {
    const { code, stderr } = await runCli(['--migrations', fixtureModule, 'status'], {
      env: { DATABASE_URL: undefined },
    });
    expect(code).toBe(2);
    expectOneErrorLine(stderr, /no database: pass --database-url <url> or set DATABASE_URL/);
  });

  it('missing table: one line naming the table and the migration, exit 1', async () => {
    const verify = await db.run('verify', 'users-username');
    expect(verify.code).toBe(1);
    expectOneErrorLine(
      verify.stderr,
      new RegExp(`table "?${db.schema}\\.users"? named by migration "users-username" does not exist`),
    );
    const expand = await db.run('expand', 'users-username');
    expect(expand.code).toBe(1);
    expectOneErrorLine(expand.stderr, /does not exist/);
  });

  it('--verbose: the same error with its stack trace', async () => {
    const { code, stderr } = await db.run('verify', 'users-username', '--verbose');
    expect(code).toBe(1);
    expect(stderr.split('\n')[0]).toMatch(/^flagshift: error: table .* does not exist/);
    expect(stderr).toMatch(/\n\s+at /);
  });

  it('bad arguments: one line from the parser, exit 2', async () => {
    const percent = await db.run('flags', 'set', 'users-username', '--percent', '150');
    expect(percent.code).toBe(2);
    expectOneErrorLine(percent.stderr, /'150' is invalid\. the read percentage must be a decimal number from 0 to 100/);
    // Number() reads these as 16, 3 and 10; an operator typing them made a mistake.
    for (const notDecimal of ['0x10', '0b11', '1e1']) {
      const result = await db.run('flags', 'set', 'users-username', '--percent', notDecimal);
      expect(result.code).toBe(2);
      expectOneErrorLine(
        result.stderr,
        new RegExp(`'${notDecimal}' is invalid\\. the read percentage must be a decimal`),
      );
    }
    const hex = await db.run('plan', 'users-username', '--percents', '1,0x10');
    expectOneErrorLine(hex.stderr, /'1,0x10' is invalid\. the ramp must be increasing percentages/);
    for (const ratio of ['-1', '101', '0x1', 'fast']) {
      const pause = await db.run('backfill', 'users-username', '--pause-ratio', ratio);
      expect(pause.code).toBe(2);
      expectOneErrorLine(pause.stderr, /is invalid\. the pause ratio must be a decimal number from 0 to 100/);
    }
    const sample = await db.run('verify', 'users-username', '--sample', '0x1');
    expectOneErrorLine(sample.stderr, /'0x1' is invalid\. the sample must be a fraction/);
    const stage = await db.run('flags', 'set', 'users-username', '--stage', 'halfway');
    expect(stage.code).toBe(2);
    expectOneErrorLine(stage.stderr, /argument 'halfway' is invalid\. Allowed choices are off, dualwrite/);
    const command = await runCli(['expnad']);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^flagshift: error: unknown command 'expnad'/);
    const missing = await db.run('verify');
    expectOneErrorLine(missing.stderr, /missing required argument 'migration'/);
  });

  it(
    'migrations module: missing, exporting nothing or failing to load is one line; a compile error adds where and why',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'flagshift-cli-'));
      try {
        const none = await runCli(['status'], { cwd: dir, env: { DATABASE_URL: testDatabaseUrl() } });
        expect(none.code).toBe(2);
        expectOneErrorLine(none.stderr, /no migrations module: create \.\/flagshift\.config\.ts/);

        await writeFile(join(dir, 'flagshift.config.mjs'), 'export const answer = 42;\n');
        const empty = await runCli(['status'], { cwd: dir, env: { DATABASE_URL: testDatabaseUrl() } });
        expectOneErrorLine(empty.stderr, /migrations module \.\/flagshift\.config\.mjs exports no migrations/);

        await writeFile(join(dir, 'broken.mjs'), 'throw new Error("boom in config");\n');
        const broken = await runCli(['--migrations', 'broken.mjs', 'status'], { cwd: dir });
        expectOneErrorLine(broken.stderr, /migrations module \.\/broken\.mjs failed to load: boom in config/);

        // A compile error: its file:line:col and cause come with the error line, without --verbose.
        // In a process of its own: the message is the one of the loader the CLI runs with
        // (tsx's esbuild), not of the test runner's, which compiles TypeScript in this process.
        await writeFile(join(dir, 'bad.ts'), 'export const x = ;\n');
        const syntax = await runCliProcess(['--migrations', 'bad.ts', 'status'], { cwd: dir });
        expect(syntax.code).toBe(2);
        const lines = syntax.stderr.trimEnd().split('\n');
        expect(lines[0]).toMatch(/^flagshift: error: migrations module \.\/bad\.ts failed to load: /);
        expect(lines.slice(1).join('\n')).toMatch(/^ {2}\S*bad\.ts:1:17: ERROR: Unexpected ";"$/m);
        expect(syntax.stderr).not.toMatch(/\n\s+at /);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
