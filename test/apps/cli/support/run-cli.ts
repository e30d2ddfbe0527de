/**
 * Runs the `flagshift` CLI from the sources as a child process, the way an operator runs
 * it, and creates a schema of its own per test on the run's PostgreSQL server.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { testDatabaseUrl } from '../../../support/pg-connections.js';

export const root = fileURLToPath(new URL('../../../..', import.meta.url));
export const fixtureModule = 'test/apps/cli/fixtures/migrations.ts';
/** tsx's loader by absolute URL, so the CLI also starts from a directory without node_modules. */
const tsxLoader = pathToFileURL(createRequire(`${root}package.json`).resolve('tsx')).href;

/** What a CLI run printed and how it exited. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli}. */
export interface RunCliOptions {
  /** Environment on top of the parent's; `undefined` values remove a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Close the reading end of the CLI's stdout (and stderr) at once, as `| head` does once it has enough. */
  readonly closeOutput?: 'stdout' | 'both';
}

/** Runs `flagshift <args>` (through tsx, on the sources) and collects its output. */
export function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', tsxLoader, '--conditions=flagshift-source', `${root}apps/cli/cli.ts`, ...args],
      { cwd: options.cwd ?? root, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    if (options.closeOutput !== undefined) child.stdout.destroy();
    if (options.closeOutput === 'both') child.stderr.destroy();
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A schema of its own on the test server, with the CLI options and environment that point at it. */
export interface CliSchema {
  readonly schema: string;
  readonly pool: pg.Pool;
  /** Global options: the fixture module, and state and flags tables in the schema. */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Runs the CLI against this schema. */
  run(...args: string[]): Promise<CliResult>;
  sql<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
  drop(): Promise<void>;
}

/** Creates a fresh schema and a CLI runner aimed at it. */
export async function createCliSchema(): Promise<CliSchema> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
  pool.on('error', () => undefined);
  await pool.query(`CREATE SCHEMA ${schema}`);
  const args = ['--migrations', fixtureModule, '--state-schema', schema, '--flags-schema', schema];
  const env = { DATABASE_URL: testDatabaseUrl(), FLAGSHIFT_CLI_TEST_SCHEMA: schema };
  return {
    schema,
    pool,
    args,
    env,
    run: (...rest) => runCli([...args, ...rest], { env }),
    sql: async <Row>(text: string, params?: unknown[]) => (await pool.query(text, params)).rows as Row[],
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}
