import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliSchema,
  cliEnv,
  createCliSchema,
  PROCESS_TEST_TIMEOUT_MS,
  root,
  runCli,
  tsxLoader,
} from './support/run-cli.js';

/** A `flagshift dashboard` serving until {@link Served.stop}. */
interface Served {
  readonly url: string;
  /** Everything it has written to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

describe('flagshift CLI: dashboard', () => {
  let db: CliSchema;
  beforeAll(async () => {
    db = await createCliSchema();
    await db.sql(
      `CREATE TABLE ${db.schema}.users (id integer PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
    );
    // No backfill has run: only a forced move reaches shadow.
    const set = await db.run('flags', 'set', 'users-username', '--stage', 'shadow', '--force');
    expect(set.code, set.stderr).toBe(0);
  });
  afterAll(async () => {
    await db.drop();
  });

  /** Starts `flagshift dashboard --port 0 ...args` and waits for the status line giving its address. */
  async function serve(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Served> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        tsxLoader,
        '--conditions=flagshift-source',
        `${root}apps/cli/cli.ts`,
        ...db.args,
        'dashboard',
        '--port',
        '0',
        ...args,
      ],
      {
        cwd: root,
        env: cliEnv({ ...db.env, FLAGSHIFT_DASHBOARD_TOKEN: '', ...env }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const closed = new Promise((resolve) => child.once('close', resolve));
    let out = '';
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const stop = async () => {
      child.kill('SIGINT');
      await closed;
    };
    try {
      const url = await new Promise<string>((resolve, reject) => {
        // The address is a status line, on stderr; stdout stays for data.
        const look = () => {
          const match = /flagshift dashboard at (http:\/\/\S+) \((read-only)?/.exec(out);
          // With controls, the token line follows the address line at once.
          if (match && (match[2] !== undefined || /dashboard token.*\n/.test(out))) resolve(match[1]!);
        };
        child.stderr.on('data', look);
        // Short of the test's own limit, to fail with what the process printed.
        setTimeout(() => reject(new Error(`no address after 100 s: ${out}`)), 100_000).unref();
        child.on('close', (code) =>
          reject(new Error(`dashboard exited with ${code} before printing its address: ${out}`)),
        );
      });
      return { url, stderr: () => out, stop };
    } catch (error) {
      await stop();
      throw error;
    }
  }

  const checkToken = (url: string, token?: string) =>
    fetch(new URL('api/token', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { 'x-flagshift-token': token }) },
      body: '{}',
    });

  it(
    'serves the state of every migration, with controls and a generated token printed once, until interrupted',
    async () => {
      const served = await serve([]);
      try {
        expect(served.stderr()).toMatch(
          /flagshift dashboard at http:\/\/127\.0\.0\.1:\d+\/ \(ramp and kill controls on\)/,
        );
        const token = /paste into the page once .*: (\S+)\n/.exec(served.stderr())?.[1];
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(served.stderr().split(token!).length - 1).toBe(1);
        expect(served.url).not.toContain(token);

        const state = (await (await fetch(new URL('api/state', served.url))).json()) as {
          migrations: { name: string; flags?: { stage?: string } }[];
        };
        const users = state.migrations.find((migration) => migration.name === 'users-username');
        expect(users, JSON.stringify(state).slice(0, 500)).toBeDefined();
        expect(JSON.stringify(users)).toContain('shadow');
        const page = await (await fetch(served.url)).text();
        expect(page).toContain('<html');
        expect(page).not.toContain(token);

        expect((await checkToken(served.url)).status).toBe(401);
        expect((await checkToken(served.url, token)).status).toBe(200);
      } finally {
        await served.stop();
      }
      // Printed once: stopping prints it no more.
      expect(served.stderr().split(/: [A-Za-z0-9_-]{43}\n/).length - 1).toBe(1);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'FLAGSHIFT_DASHBOARD_TOKEN: the token changes need, never printed',
    async () => {
      const token = 'env-token-9f8e7d6c5b4a3210';
      const served = await serve([], { FLAGSHIFT_DASHBOARD_TOKEN: token });
      try {
        expect(served.stderr()).toContain('changes need the dashboard token from FLAGSHIFT_DASHBOARD_TOKEN');
        expect(served.stderr()).not.toContain(token);
        expect((await checkToken(served.url, token)).status).toBe(200);
        expect((await checkToken(served.url, `${token}x`)).status).toBe(401);
      } finally {
        await served.stop();
      }
      expect(served.stderr()).not.toContain(token);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    '--read-only: no change routes and no token',
    async () => {
      const served = await serve(['--read-only'], { FLAGSHIFT_DASHBOARD_TOKEN: 'env-token-9f8e7d6c5b4a3210' });
      try {
        expect(served.stderr()).toMatch(/\(read-only\)/);
        expect(served.stderr()).not.toMatch(/token/);
        expect((await checkToken(served.url, 'env-token-9f8e7d6c5b4a3210')).status).toBe(404);
        const kill = await fetch(new URL('api/migrations/users-username/kill', served.url), {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-flagshift-token': 'env-token-9f8e7d6c5b4a3210' },
          body: '{}',
        });
        expect(kill.status).toBe(404);
      } finally {
        await served.stop();
      }
      const flags = await db.run('flags', 'get', 'users-username');
      expect(flags.stdout).toContain('shadow');
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it('bad input: a short FLAGSHIFT_DASHBOARD_TOKEN (not quoted back), every address without --allowed-host: exit 2', async () => {
    // In process: both fail before the dashboard would serve (and wait for a signal).
    const short = await runCli([...db.args, 'dashboard', '--port', '0'], {
      env: { ...db.env, FLAGSHIFT_DASHBOARD_TOKEN: 'tiny-secret' },
    });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(
      /FLAGSHIFT_DASHBOARD_TOKEN can't be the dashboard token: .*must be at least 16 characters, got 11/,
    );
    expect(short.stderr).not.toContain('tiny-secret');
    const wildcard = await runCli([...db.args, 'dashboard', '--port', '0', '--host', '0.0.0.0'], { env: db.env });
    expect(wildcard.code).toBe(2);
    expect(wildcard.stderr).toMatch(/listening on every address \(0\.0\.0\.0\) needs --allowed-host/);
  });
});
