/**
 * What every command works with: the global options, the migrations module, one
 * connection pool, and the two output streams (results on stdout, progress on stderr).
 */
import { hostname, userInfo } from 'node:os';
import type { Pool } from 'pg';
import type { PgDriver } from '../../adapters/pg/index.js';
import type { FlagTableOptions } from '../../adapters/postgres-flags/flag-table.js';
import { ErrorCode, type Migration } from '../../src/index.js';
import { identifierProblem } from '../../src/internal.js';
import type { LifecycleEvent } from '../../src/lifecycle/index.js';
import { CliError, ExitCode, isConnectionError } from './cli-error.js';
import { findMigrationsModule, loadMigrations } from './load-migrations.js';

/** The options every command accepts. */
export interface GlobalOptions {
  readonly migrations?: string;
  readonly databaseUrl?: string;
  readonly stateSchema: string;
  readonly flagsSchema: string;
  readonly flagsTable: string;
  readonly verbose: boolean;
  readonly json: boolean;
}

/** Where the CLI writes. Tests and embedding callers can swap them. */
export interface CliStreams {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/**
 * Query parameters of a connection string that carry secrets: libpq's `password` and
 * `sslpassword`, and anything named like a password, secret or token.
 */
const SECRET_PARAMETER = /pass|secret|token/i;

/**
 * Hides the secrets of a connection string, for messages: the password before `@` and
 * the values of secret query parameters (`?password=...`, `sslpassword=...`). A string
 * that is not a URL is masked the same way, as text.
 */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) {
    return (
      url
        .replace(/:[^:@/]*@/, ':***@')
        // A value may be quoted, as libpq's key=value form allows: 'sec ret', with \' inside.
        .replace(/(^|[?&;\s])([^=&#;\s]*)=('(?:[^'\\]|\\.)*'?|[^&#;\s]*)/g, (all, lead: string, name: string) =>
          SECRET_PARAMETER.test(name) ? `${lead}${name}=***` : all,
        )
    );
  }
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  for (const name of new Set(parsed.searchParams.keys())) {
    if (SECRET_PARAMETER.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}

/** Whether `url` is a PostgreSQL connection URL (`postgres://` or `postgresql://`) that parses. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url) && URL.canParse(url);
}

/** Lazily opened resources of one CLI run. */
export class CliContext {
  readonly options: GlobalOptions;
  readonly streams: CliStreams;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  #migrations: Promise<Map<string, Migration>> | undefined;
  #pool: Pool | undefined;
  #driver: Promise<PgDriver> | undefined;

  constructor(options: GlobalOptions, streams: CliStreams, cwd: string, env: NodeJS.ProcessEnv) {
    for (const [name, value] of [
      ['--state-schema', options.stateSchema],
      ['--flags-schema', options.flagsSchema],
      ['--flags-table', options.flagsTable],
    ] as const) {
      const problem = identifierProblem(value);
      if (problem !== undefined) throw new CliError(`${name} ${JSON.stringify(value)} ${problem}`);
    }
    this.options = options;
    this.streams = streams;
    this.cwd = cwd;
    this.env = env;
  }

  /** Writes a line of results to stdout. */
  print(text = ''): void {
    this.streams.stdout.write(`${text}\n`);
  }

  /** Writes a line of commentary (progress, hints, warnings) to stderr. */
  note(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }

  /** Writes `value` as JSON to stdout. */
  printJson(value: unknown): void {
    this.print(JSON.stringify(value, null, 2));
  }

  /** A lifecycle event listener that prints events on stderr with `--verbose`. */
  get onEvent(): ((event: LifecycleEvent) => void) | undefined {
    if (!this.options.verbose) return undefined;
    return (event) => this.note(`  [${event.type}] ${event.message}`);
  }

  /** Who the CLI acts as, recorded with flag changes. */
  get actor(): string {
    let user = 'unknown';
    try {
      user = userInfo().username;
    } catch {
      // No passwd entry (a container's arbitrary uid): the host still says where it came from.
    }
    return `${user}@${hostname()} (flagshift CLI)`;
  }

  /** Where the flags table is. */
  get flagTable(): FlagTableOptions {
    return { schema: this.options.flagsSchema, table: this.options.flagsTable };
  }

  /** Every migration of the migrations module, by name. */
  migrations(): Promise<Map<string, Migration>> {
    this.#migrations ??= findMigrationsModule(this.options.migrations, this.cwd).then((path) =>
      loadMigrations(path, this.cwd),
    );
    return this.#migrations;
  }

  /** The migration called `name`; an unknown name is an error listing the known ones. */
  async migration(name: string): Promise<Migration> {
    const all = await this.migrations();
    const migration = all.get(name);
    if (migration === undefined) {
      throw new CliError(`unknown migration "${name}"; known: ${[...all.keys()].sort().join(', ')}`);
    }
    return migration;
  }

  /** A driver over a pool to `--database-url` (or DATABASE_URL), checked with one round trip. */
  driver(): Promise<PgDriver> {
    this.#driver ??= this.#connect();
    return this.#driver;
  }

  async #connect(): Promise<PgDriver> {
    const url = this.options.databaseUrl ?? this.env['DATABASE_URL'];
    if (url === undefined || url === '') {
      throw new CliError('no database: pass --database-url <url> or set DATABASE_URL');
    }
    if (!isPostgresUrl(url)) {
      throw new CliError(
        `database URL ${JSON.stringify(redactUrl(url))} is not a PostgreSQL URL; expected postgres://user:password@host:5432/database`,
      );
    }
    let pg: typeof import('pg')['default'];
    try {
      pg = (await import('pg')).default;
    } catch (cause) {
      throw new CliError('the flagshift CLI needs the "pg" package: npm install pg', { cause });
    }
    const pool = new pg.Pool({
      connectionString: url,
      // Workers and progress readers each hold one; a few more for status reads.
      max: 16,
      connectionTimeoutMillis: 10_000,
      application_name: 'flagshift-cli',
    });
    pool.on('error', () => undefined);
    this.#pool = pool;
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      const reason = (error as { message?: unknown }).message;
      throw new CliError(`cannot connect to ${redactUrl(url)}: ${String(reason ?? error)}`, {
        code: ErrorCode.Driver,
        exitCode: ExitCode.Failure,
        cause: error,
      });
    }
    const { createPgDriver } = await import('../../adapters/pg/index.js');
    return createPgDriver(pool, { kind: 'pool' });
  }

  /** Ends the pool, if one was opened. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end().catch(() => undefined);
  }
}
