import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliSchema,
  cliEnv,
  createCliSchema,
  PROCESS_TEST_TIMEOUT_MS,
  root,
  tsxLoader,
} from './support/run-cli.js';

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

  it(
    'serves the state of every migration, with controls when the flags table exists, until interrupted',
    async () => {
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
        ],
        { cwd: root, env: cliEnv(db.env), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      try {
        const url = await new Promise<string>((resolve, reject) => {
          // The address is a status line, on stderr; stdout stays for data.
          let out = '';
          child.stderr.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const match = /flagshift dashboard at (http:\/\/\S+) \(ramp and kill controls on\)/.exec(out);
            if (match) resolve(match[1]!);
          });
          // Short of the test's own limit, to fail with what the process printed.
          setTimeout(() => reject(new Error(`no address after 100 s: ${out}`)), 100_000).unref();
          child.on('close', (code) =>
            reject(new Error(`dashboard exited with ${code} before printing its address: ${out}`)),
          );
        });
        const state = (await (await fetch(new URL('api/state', url))).json()) as {
          migrations: { name: string; flags?: { stage?: string } }[];
        };
        const users = state.migrations.find((migration) => migration.name === 'users-username');
        expect(users, JSON.stringify(state).slice(0, 500)).toBeDefined();
        expect(JSON.stringify(users)).toContain('shadow');
        const page = await (await fetch(url)).text();
        expect(page).toContain('<html');
      } finally {
        child.kill('SIGINT');
        await new Promise((resolve) => child.once('close', resolve));
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
