/**
 * Runs the `flagshift` CLI for the tests: in this process through `main` (the program
 * itself, without a process start per command), or as a child process where the process
 * is what is tested (a reader closing the pipe, Ctrl-C). Creates a schema of its own per
 * test on the run's PostgreSQL server, with a migrations module whose tables live in it.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { createPgDriver } from '../../../../adapters/pg/index.js';
import { main } from '../../../../apps/cli/main.js';
import { createMemoryMetrics } from '../../../../src/index.js';
import { createMetricsPublisher } from '../../../../src/lifecycle/index.js';
import { testDatabaseUrl } from '../../../support/pg-connections.js';

export const root = fileURLToPath(new URL('../../../..', import.meta.url));
/** The fixture migrations, their tables in `public`: for runs that never reach a table. */
export const fixtureModule = 'test/apps/cli/fixtures/migrations.ts';
/** tsx's loader by absolute URL, so the CLI also starts from a directory without node_modules. */
export const tsxLoader = pathToFileURL(createRequire(`${root}package.json`).resolve('tsx')).href;

/**
 * The time a test that starts the CLI as a process gets: the TypeScript loader's start
 * takes a second on an idle machine and many more on a loaded one.
 */
export const PROCESS_TEST_TIMEOUT_MS = 120_000;

/** What a CLI run printed and how it exited. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli} and {@link runCliProcess}. */
export interface RunCliOptions {
  /** Environment on top of this process's; `undefined` values remove a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default the repository's root */
  readonly cwd?: string;
}

/** The environment of a run: this process's, without colours, with `overrides` applied. */
export function cliEnv(overrides: RunCliOptions['env'] = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** A stream that keeps what is written to it, as a pipe does (not a terminal). */
class Collected extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs `flagshift <args>` in this process, with its own streams, environment and working directory. */
export async function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  const stdout = new Collected();
  const stderr = new Collected();
  const code = await main(args, { stdout, stderr }, cliEnv(options.env), options.cwd ?? root);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Options of {@link runCliProcess}. */
export interface RunCliProcessOptions extends RunCliOptions {
  /** Close the reading end of the CLI's stdout (and stderr) at once, as `| head` does once it has enough. */
  readonly closeOutput?: 'stdout' | 'both';
}

/** Starts `flagshift <args>` as a child process, through tsx, on the sources; its stdout and stderr piped. */
export function spawnCli(args: readonly string[], options: RunCliOptions = {}): ChildProcessWithoutNullStreams {
  return spawn(
    process.execPath,
    ['--import', tsxLoader, '--conditions=flagshift-source', `${root}apps/cli/cli.ts`, ...args],
    {
      cwd: options.cwd ?? root,
      env: cliEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
}

/** Runs `flagshift <args>` as a child process (through tsx, on the sources) and collects its output. */
export function runCliProcess(args: readonly string[], options: RunCliProcessOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, options);
    child.stdin.end();
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
  /** Global options: a migrations module over tables in the schema, state and flags tables in the schema. */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Runs the CLI, in this process, against this schema. */
  run(...args: string[]): Promise<CliResult>;
  sql<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
  drop(): Promise<void>;
}

/**
 * Creates a fresh schema and a CLI runner aimed at it. The migrations module is a file of
 * the schema's own: a module is evaluated once per process, so one module can't serve many
 * schemas through the environment.
 */
export async function createCliSchema(): Promise<CliSchema> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), 'flagshift-cli-'));
  const module = join(dir, 'migrations.ts');
  const fixtures = pathToFileURL(join(root, fixtureModule)).href;
  await writeFile(
    module,
    `import { fixtureMigrations } from ${JSON.stringify(fixtures)};\nexport default fixtureMigrations(${JSON.stringify(schema)});\n`,
  );
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
  pool.on('error', () => undefined);
  await pool.query(`CREATE SCHEMA ${schema}`);
  const args = ['--migrations', module, '--state-schema', schema, '--flags-schema', schema];
  const env = { DATABASE_URL: testDatabaseUrl() };
  return {
    schema,
    pool,
    args,
    env,
    run: (...rest) => runCli([...args, ...rest], { env }),
    sql: async <Row>(text: string, params?: unknown[]) => (await pool.query(text, params)).rows as Row[],
    async drop() {
      try {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await pool.end();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Publishes `comparisons` comparisons of `migration`, the first `mismatches` of them
 * mismatched, to the fleet metrics tables in `db`'s schema, as an application process
 * does: recorded by a memory sink, published once by the metrics publisher. The evidence
 * the promotion gate asks for.
 */
export async function publishComparisons(
  db: CliSchema,
  migration: string,
  comparisons: number,
  mismatches = 0,
): Promise<void> {
  const metrics = createMemoryMetrics();
  for (let i = 0; i < comparisons; i++) {
    metrics.record({ type: 'comparison', migration, stage: 'shadow', route: 'shadow', matched: i >= mismatches });
  }
  const publisher = createMetricsPublisher({
    driver: createPgDriver(db.pool),
    metrics,
    stateSchema: db.schema,
    processId: `app-${randomBytes(4).toString('hex')}`,
    intervalMs: 3_600_000,
  });
  if (!(await publisher.publish())) throw new Error('the metrics publisher did not publish');
  await publisher.stop();
}
