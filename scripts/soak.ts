/**
 * The soak: 8 concurrent clients (each a separate "process": its own pool, repository and
 * flag cache) write and read a table under two migrations, one same-row (`user_name` to
 * `username`) and one cross-table (`users.bio` to `user_profiles.bio`), while both flags
 * ramp up and down through the dual-write stages (dualwrite, shadow, live at rising and
 * falling percentages, rampdown), the flag provider is killed and restored, and database
 * connections are terminated at random. Alongside, an old app version writes the old
 * columns with plain SQL (the sync triggers of `expand` carry its writes over), and a
 * backfill fills the rows written before the migration, resuming whenever its connection
 * dies. At the end every acknowledged write's final value is checked (zero lost writes),
 * both migrations' sides are compared row by row and verified (zero divergence).
 *
 * Run: `npm run soak` (SOAK_SECONDS, default 60; SOAK_CLIENTS, default 8; SOAK_KILL_CONNECTIONS=0
 * to keep connections alive; DATABASE_URL to use a server instead of starting one).
 * Exits non-zero on any violation.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  type MetricsSnapshot,
  type Migration,
  moveColumn,
  type Repository,
  rename,
  type SimulatedFailure,
  type Stage,
} from 'flagshift';
import { createPgDriver } from 'flagshift/pg';
import pg from 'pg';
import { z } from 'zod';
import { createBackfill } from '../src/lifecycle/backfill/backfill.js';
import { expand } from '../src/lifecycle/ddl/expand.js';
import { verify } from '../src/lifecycle/verify.js';
import { type LedgerWrite, WriteLedger } from '../test/support/model-ledger.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';

/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** Server to soak. @default DATABASE_URL, else an embedded server started for the run */
  readonly connectionString?: string;
  /** How long the traffic runs, in seconds. @default 60 */
  readonly seconds?: number;
  /** Concurrent clients. @default 8 */
  readonly clients?: number;
  /** Terminate random client backends during the run. @default true */
  readonly killConnections?: boolean;
  /** Rows written before the migration began, which a backfill fills during the run. @default 2000 */
  readonly legacyRows?: number;
  /** Progress lines. @default none */
  readonly log?: (line: string) => void;
}

/** What a soak found. `violations` empty means it passed. */
export interface SoakReport {
  readonly ok: boolean;
  readonly violations: readonly string[];
  readonly seconds: number;
  readonly clients: number;
  readonly operations: Readonly<Record<string, number>>;
  readonly acknowledgedWrites: number;
  /** Writes whose caller got an error (each may or may not have happened). */
  readonly failedWrites: number;
  /** Reads checked against the ledger while traffic ran. */
  readonly checkedReads: number;
  readonly keysChecked: number;
  readonly lostWrites: number;
  readonly divergentRows: number;
  readonly stageChanges: number;
  readonly flagOutages: number;
  readonly connectionsKilled: number;
  /** Backfill runs, resumes after killed connections included. */
  readonly backfillRuns: number;
  /** Whether the final verification of each migration passed. */
  readonly verifications: Readonly<Record<string, boolean>>;
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly metrics: MetricsSnapshot['totals'];
}

const entity = z.object({ id: z.number().int(), username: z.string(), bio: z.string(), email: z.string() });
type User = z.infer<typeof entity>;
type Row = Omit<User, 'id'>;

const KEYS_PER_CLIENT = 40;
/** Ids of the rows written before the migration began start here, above every client's keys. */
const LEGACY_BASE = 1_000_000;
/** The ramp, up then down: every step writes both sides. */
const RAMP: readonly (readonly [Stage, number])[] = [
  ['dualwrite', 0],
  ['shadow', 0],
  ['live', 1],
  ['live', 10],
  ['live', 50],
  ['live', 100],
  ['rampdown', 100],
  ['live', 50],
  ['live', 10],
  ['shadow', 0],
  ['dualwrite', 0],
];
const FLAG_FAILURES: readonly SimulatedFailure[] = [
  'error',
  'hang',
  { value: 'LIVE!' },
  { value: 500 },
  { value: null },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** Runs the soak against a server and reports what it found. Never throws for a violation. */
export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const seconds = options.seconds ?? 60;
  const clientCount = options.clients ?? 8;
  const killConnections = options.killConnections ?? true;
  const legacyRows = options.legacyRows ?? 2000;
  const log = options.log ?? (() => undefined);
  const server =
    options.connectionString === undefined && process.env['DATABASE_URL'] === undefined
      ? await startEmbeddedPostgres({
          settings: { max_connections: '200', fsync: 'off', synchronous_commit: 'off' },
          tempDirPrefix: 'flagshift-soak-',
        })
      : undefined;
  const connectionString = options.connectionString ?? process.env['DATABASE_URL'] ?? server!.connectionString;
  const schema = `soak_${randomBytes(5).toString('hex')}`;
  const applicationName = `flagshift-soak-${schema}`;
  const admin = new pg.Pool({ connectionString, max: 2, application_name: `${applicationName}-admin` });
  admin.on('error', () => undefined);
  const pools: pg.Pool[] = [];
  /** A pool of the clients under test: its connections are the ones the killer picks from. */
  const victimPool = (max: number) => {
    const pool = new pg.Pool({ connectionString, max, application_name: applicationName });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  };
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(
      `CREATE TABLE ${schema}.users (id bigint PRIMARY KEY, user_name text, username text, bio text, email text NOT NULL)`,
    );
    await admin.query(`CREATE TABLE ${schema}.user_profiles (user_id bigint PRIMARY KEY, bio text)`);
    // Rows written before the migration began: old columns only, for the backfill to fill.
    await admin.query(
      `INSERT INTO ${schema}.users (id, user_name, bio, email)
       SELECT g, 'legacy-' || g, 'legacy bio ' || g, g || '@legacy' FROM generate_series($1::bigint, $1::bigint + $2 - 1) AS g`,
      [LEGACY_BASE, legacyRows],
    );
    const table = defineTable({ name: `${schema}.users`, key: 'id', entity });
    const usernames = defineMigration({
      name: 'soak-username',
      table,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
      defaultStage: 'dualwrite',
    });
    const bios = defineMigration({
      name: 'soak-bio',
      table,
      mappings: [
        moveColumn({
          field: 'bio',
          from: 'bio',
          to: { table: `${schema}.user_profiles`, column: 'bio', key: ['user_id'] },
          type: 'text',
        }),
      ],
      defaultStage: 'dualwrite',
    });
    const migrations = [usernames, bios] as unknown as Migration[];
    const adminDriver = createPgDriver(admin);
    // Sync triggers, so the old app version's writes reach the new side too.
    for (const migration of migrations) await expand(adminDriver, migration, { stateSchema: schema });

    const flags = createMemoryFlags(
      Object.fromEntries(
        migrations.flatMap((m) => [
          [m.stageFlagKey, 'dualwrite'],
          [m.percentFlagKey, 0],
        ]),
      ),
    );
    const metrics = createMemoryMetrics();
    const ledger = new WriteLedger<Row>((row) => JSON.stringify([row.username, row.bio, row.email]));
    const operations: Record<string, number> = {};
    const errorsByCode: Record<string, number> = {};
    const violations: string[] = [];
    const count = (name: string) => {
      operations[name] = (operations[name] ?? 0) + 1;
    };
    /** Records a failed operation; returns normally when such a failure is expected under the faults injected. */
    const failed = (error: unknown, what: string) => {
      const code = error instanceof DriverError ? (error.sqlState ?? 'connection') : (error as { code?: string }).code;
      const label = code ?? 'non-driver';
      errorsByCode[label] = (errorsByCode[label] ?? 0) + 1;
      // A duplicate insert (23505) is an ordinary rejected write; killed connections may
      // fail anything. Everything else is a violation: flag failures must never surface.
      const expected = label === '23505' || (killConnections && (label === 'connection' || label === '57P01'));
      if (!expected) violations.push(`${what} failed unexpectedly: ${String(error)}`);
    };

    const writers = clientCount + 1;
    const keyOf = (writer: number, k: number) => writer + writers * k;
    const deadline = Date.now() + seconds * 1000;

    const client = (c: number) => {
      const repo = createRepository(migrations as unknown as Migration<typeof entity, 'id'>[], {
        driver: createPgDriver(victimPool(2)),
        flags,
        metrics,
        flagCache: { ttlMs: 200 },
        flagTimeoutMs: 20,
      }) as unknown as Repository<User, 'id'>;
      return async () => {
        for (let seq = 0; Date.now() < deadline; seq++) {
          const id = keyOf(c, Math.floor(Math.random() * KEYS_PER_CLIENT));
          const key = String(id);
          const row: Row = { username: `c${c}-${seq}`, bio: `bio ${c}/${seq} ✓`, email: `${seq}@c${c}` };
          const roll = Math.random();
          // Insert only a key that may be absent: duplicates would only add rejected writes.
          const insertable = ledger.possible(key).includes(undefined);
          let write: LedgerWrite<Row> | undefined;
          try {
            if (roll < 0.12 && insertable) {
              write = { op: 'insert', entity: row };
              count('insert');
              await repo.insert({ id, ...row });
              ledger.acknowledged(key, write);
            } else if (roll < 0.3) {
              write = { op: 'upsert', entity: row };
              count('upsert');
              await repo.upsert({ id, ...row });
              ledger.acknowledged(key, write);
            } else if (roll < 0.5) {
              const fields = pick<(keyof Row)[]>([['username'], ['bio'], ['email'], ['username', 'bio']]);
              const patch: Partial<Row> = Object.fromEntries(fields.map((field) => [field, row[field]]));
              write = { op: 'update', patch };
              count('update');
              const found = await repo.update(id, patch);
              ledger.acknowledged(key, { op: 'update', patch, found });
            } else if (roll < 0.55) {
              write = { op: 'delete' };
              count('delete');
              const found = await repo.delete(id);
              ledger.acknowledged(key, { op: 'delete', found });
            } else if (roll < 0.75) {
              count('get');
              const user = await repo.get(id);
              ledger.read(key, user === undefined ? undefined : strip(user), 'get');
            } else if (roll < 0.9) {
              count('getMany');
              const ids = [id, keyOf(c, (id + 1) % KEYS_PER_CLIENT), keyOf(c, (id + 7) % KEYS_PER_CLIENT)];
              const found = new Map((await repo.getMany(ids)).map((user) => [user.id, user]));
              for (const other of new Set(ids)) {
                const user = found.get(other);
                ledger.read(String(other), user === undefined ? undefined : strip(user), 'getMany');
              }
            } else {
              count('find');
              const target = pick(ledger.possible(key));
              if (target !== undefined) {
                for (const user of await repo.find({ where: { username: target.username } })) {
                  if (user.username !== target.username) {
                    violations.push(`find by username returned a row with another username: ${JSON.stringify(user)}`);
                  }
                }
              }
            }
          } catch (error) {
            failed(error, 'a repository operation');
            if (write !== undefined) ledger.failed(key, write);
          }
        }
        repo.close();
      };
    };

    /** An old app version: raw SQL on the old columns only, through the sync triggers. */
    const legacy = async () => {
      const pool = victimPool(2);
      const c = clientCount;
      for (let seq = 0; Date.now() < deadline; seq++) {
        const id = keyOf(c, Math.floor(Math.random() * KEYS_PER_CLIENT));
        const key = String(id);
        const row: Row = { username: `old-app-${seq}`, bio: `old bio ${seq}`, email: `${seq}@old-app` };
        const roll = Math.random();
        let write: LedgerWrite<Row> | undefined;
        try {
          if (roll < 0.5) {
            write = { op: 'upsert', entity: row };
            count('legacy upsert');
            await pool.query(
              `INSERT INTO ${schema}.users (id, user_name, bio, email) VALUES ($1, $2, $3, $4)
               ON CONFLICT (id) DO UPDATE SET user_name = EXCLUDED.user_name, bio = EXCLUDED.bio, email = EXCLUDED.email`,
              [id, row.username, row.bio, row.email],
            );
            ledger.acknowledged(key, write);
          } else if (roll < 0.75) {
            write = { op: 'update', patch: { username: row.username } };
            count('legacy update');
            const result = await pool.query(`UPDATE ${schema}.users SET user_name = $1 WHERE id = $2`, [
              row.username,
              id,
            ]);
            ledger.acknowledged(key, { ...write, found: (result.rowCount ?? 0) > 0 });
          } else if (roll < 0.8) {
            write = { op: 'delete' };
            count('legacy delete');
            const result = await pool.query(`DELETE FROM ${schema}.users WHERE id = $1`, [id]);
            ledger.acknowledged(key, { op: 'delete', found: (result.rowCount ?? 0) > 0 });
          } else {
            count('legacy read');
            const { rows } = await pool.query<{ user_name: string; bio: string; email: string }>(
              `SELECT user_name, bio, email FROM ${schema}.users WHERE id = $1`,
              [id],
            );
            const found = rows[0];
            ledger.read(
              key,
              found === undefined ? undefined : { username: found.user_name, bio: found.bio, email: found.email },
              'legacy read',
            );
          }
        } catch (error) {
          failed(error, 'an old app version write');
          if (write !== undefined) ledger.failed(key, write);
        }
      }
    };

    let stageChanges = 0;
    const ramp = async () => {
      const stepMs = (seconds * 1000) / RAMP.length;
      for (let step = 0; Date.now() < deadline; step++) {
        // The cross-table migration runs three steps behind the same-row one.
        for (const [index, migration] of migrations.entries()) {
          const [stage, percent] = RAMP[(step + RAMP.length - 3 * index) % RAMP.length]!;
          flags.setMany({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: percent });
        }
        stageChanges++;
        log(
          `step ${step}: ${migrations.map((m) => `${m.name}=${flags.get(m.stageFlagKey)}/${flags.get(m.percentFlagKey)}`).join(' ')}`,
        );
        await sleep(Math.max(50, Math.min(stepMs, deadline - Date.now())));
      }
    };
    let flagOutages = 0;
    const outages = async () => {
      const flagKeys = migrations.flatMap((m) => [m.stageFlagKey, m.percentFlagKey]);
      while (Date.now() < deadline) {
        await sleep(150 + Math.random() * 500);
        const broken = flagKeys.filter(() => Math.random() < 0.6);
        // Round robin over the failure kinds, so even a short soak meets each of them.
        for (const [index, flagKey] of broken.entries()) {
          flags.fail(flagKey, FLAG_FAILURES[(flagOutages + index) % FLAG_FAILURES.length]!);
        }
        flagOutages++;
        await sleep(100 + Math.random() * 300);
        for (const flagKey of broken) flags.restore(flagKey);
      }
    };
    let connectionsKilled = 0;
    const killer = async () => {
      while (killConnections && Date.now() < deadline) {
        await sleep(50 + Math.random() * 250);
        const { rows } = await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'",
          [applicationName],
        );
        if (rows.length === 0) continue;
        await admin.query('SELECT pg_terminate_backend($1)', [pick(rows).pid]);
        connectionsKilled++;
      }
    };
    let backfillRuns = 0;
    const backfill = async () => {
      const driver = createPgDriver(victimPool(2));
      for (const migration of migrations) {
        // A killed run fails; the next one resumes where it stopped.
        for (;;) {
          backfillRuns++;
          try {
            const report = await createBackfill(driver, migration, {
              stateSchema: schema,
              batchSize: 100,
              maxBatchSize: 200,
              leaseMs: 200,
            }).run();
            if (report.status === 'done') break;
          } catch (error) {
            failed(error, 'a backfill run');
            if (backfillRuns > 500) throw error;
          }
        }
      }
    };

    log(
      `soak: ${clientCount} clients and an old app version for ${seconds}s on schema ${schema}, backfilling ${legacyRows} rows${killConnections ? ', killing connections' : ''}`,
    );
    const clients = Array.from({ length: clientCount }, (_, c) => client(c));
    await Promise.all([ramp(), outages(), killer(), backfill(), legacy(), ...clients.map((run) => run())]);
    for (const migration of migrations) {
      flags.restore(migration.stageFlagKey);
      flags.restore(migration.percentFlagKey);
    }

    // Zero lost writes: every key's final state is what its acknowledged writes left.
    const { rows } = await admin.query<{ id: string; username: string | null; bio: string | null; email: string }>(
      `SELECT u.id, u.username, p.bio, u.email FROM ${schema}.users u LEFT JOIN ${schema}.user_profiles p ON p.user_id = u.id
        WHERE u.id < $1`,
      [LEGACY_BASE],
    );
    const byId = new Map(rows.map((row) => [String(Number(row.id)), row]));
    const keys = new Set([...ledger.keys(), ...byId.keys()]);
    const before = ledger.violations.length;
    for (const key of keys) {
      const row = byId.get(key);
      ledger.final(
        key,
        row === undefined
          ? undefined
          : { username: row.username ?? '<null>', bio: row.bio ?? '<null>', email: row.email },
      );
    }
    const lostWrites = ledger.violations.length - before;
    // Zero divergence: both sides of both migrations agree on every row, backfilled ones included.
    const { rows: divergent } = await admin.query<{ id: string | null; user_id: string | null }>(
      `SELECT u.id, p.user_id FROM ${schema}.users u FULL JOIN ${schema}.user_profiles p ON p.user_id = u.id
        WHERE u.id IS NULL OR p.user_id IS NULL OR u.user_name IS DISTINCT FROM u.username OR u.bio IS DISTINCT FROM p.bio`,
    );
    for (const row of divergent.slice(0, 10)) {
      violations.push(`invariant: old and new never diverge; row ${row.id ?? row.user_id} differs between the sides`);
    }
    const verifications: Record<string, boolean> = {};
    for (const migration of migrations) {
      const report = await verify(adminDriver, migration, { stateSchema: schema });
      verifications[migration.name] = report.passed;
      if (!report.passed) {
        violations.push(
          `invariant: verification passes after the soak; ${migration.name}: ${report.mismatchedRows} mismatched, ${report.missingRows} missing`,
        );
      }
    }
    for (const violation of ledger.violations.slice(0, 20)) {
      violations.push(`invariant: ${violation.invariant}; key ${violation.key}: ${violation.detail}`);
    }
    const totals = metrics.snapshot().totals;
    if (totals.mismatches > 0) violations.push(`invariant: shadow reads find no mismatch; found ${totals.mismatches}`);
    if (ledger.counts.acknowledged === 0) violations.push('the soak acknowledged no write at all');
    return {
      ok: violations.length === 0,
      violations,
      seconds,
      clients: clientCount,
      operations,
      acknowledgedWrites: ledger.counts.acknowledged,
      failedWrites: ledger.counts.failed,
      checkedReads: ledger.counts.reads,
      keysChecked: keys.size,
      lostWrites,
      divergentRows: divergent.length,
      stageChanges,
      flagOutages,
      connectionsKilled,
      backfillRuns,
      verifications,
      errorsByCode,
      metrics: totals,
    };
  } finally {
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    await server?.stop();
  }
}

function strip(user: User): Row {
  return { username: user.username ?? '<null>', bio: user.bio ?? '<null>', email: user.email };
}

/** A summary of `report` for people. */
export function formatSoakReport(report: SoakReport): string {
  const m = report.metrics;
  const lines = [
    `soak ${report.ok ? 'PASSED' : 'FAILED'}: ${report.clients} clients, ${report.seconds}s`,
    `  operations       ${Object.entries(report.operations)
      .map(([name, n]) => `${name} ${n}`)
      .join(', ')}`,
    `  writes           ${report.acknowledgedWrites} acknowledged, ${report.failedWrites} failed (in doubt, checked as either)`,
    `  reads checked    ${report.checkedReads} against the ledger while running; ${report.keysChecked} keys at the end`,
    `  faults           ${report.stageChanges} ramp steps, ${report.flagOutages} flag outages, ${report.connectionsKilled} connections killed`,
    `  backfill         ${report.backfillRuns} runs (resumes included); verification ${JSON.stringify(report.verifications)}`,
    `  errors           ${JSON.stringify(report.errorsByCode)}`,
    `  flag fallbacks   ${m.flagFallbacks.total} ${JSON.stringify(m.flagFallbacks.byReason)}`,
    `  reads by side    ${JSON.stringify(m.reads.bySide)}; comparisons ${m.comparisons}, mismatches ${m.mismatches}`,
    `  lost writes      ${report.lostWrites}`,
    `  divergent rows   ${report.divergentRows}`,
  ];
  for (const violation of report.violations) lines.push(`  VIOLATION ${violation}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const seconds = Number(process.env['SOAK_SECONDS'] ?? 60);
  const clients = Number(process.env['SOAK_CLIENTS'] ?? 8);
  if (!(seconds > 0) || !Number.isInteger(clients) || clients < 1) {
    console.error('SOAK_SECONDS must be a positive number and SOAK_CLIENTS a positive integer');
    process.exitCode = 2;
    return;
  }
  const report = await runSoak({
    seconds,
    clients,
    killConnections: process.env['SOAK_KILL_CONNECTIONS'] !== '0',
    log: (line) => console.log(line),
  });
  console.log(formatSoakReport(report));
  process.exitCode = report.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
