/**
 * Raw `pg` against the SDK on one connection setup: opening the connections, and timing
 * both sides interleaved into a {@link Comparison}. Parts 1-2 and 5 compare this way.
 */
import type { Repository, Stage } from 'flagshift';
import pg from 'pg';
import { type User, type UsersMigration, usersRepository } from './fixture.js';
import { interleave } from './interleave.js';
import { blockRatios, type LatencySummary, ratio, round } from './stats.js';

/** Blocks a comparison's run is cut into for its spread. */
export const BLOCKS = 10;

/** One comparison: raw against SDK on one connection setup. */
export interface Comparison {
  /**
   * `read-off`, `read-shadow`, `read-live`, `dual-write` or `page-off`, `page-live`; with
   * `/same-sql`, raw sends the SDK's own statements the way the SDK sends them (the same
   * text, prepared under a name), which leaves only the SDK's cost in process;
   * `read-off/metrics` is `read-off` with a metrics sink (`createMemoryMetrics()`).
   */
  readonly name: string;
  /** `client` (one connection) or `pool8`. */
  readonly connections: 'client' | 'pool8';
  readonly concurrency: number;
  readonly rawSql: string;
  readonly sdkSql: string;
  readonly raw: LatencySummary;
  readonly sdk: LatencySummary;
  /** SDK median over raw median. */
  readonly medianRatio: number;
  /** The same ratio in each of {@link BLOCKS} consecutive blocks of the run: its spread. */
  readonly blockRatios: readonly number[];
  /** SDK median minus raw median: microseconds the SDK adds per call. */
  readonly addedUs: number;
  /** SDK p99 over raw p99. */
  readonly p99Ratio: number;
  /** Operations per second of both sides together, over the measured wall time. */
  readonly opsPerSecond: number;
}

/** `pg`'s query config form: a statement prepared under `name`. */
export interface PreparingRunner {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: Record<string, unknown>[] }>;
}

/** One connection, or a pool of 8 whose connections are all open, before anything is measured. */
export async function openConnections(
  connectionString: string,
  connections: 'client' | 'pool8',
): Promise<pg.Client | pg.Pool> {
  if (connections === 'client') {
    const client = new pg.Client({ connectionString });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }
  const pool = new pg.Pool({ connectionString, max: 8 });
  // An idle connection the server drops at shutdown must not crash the run.
  pool.on('error', () => undefined);
  const held = await Promise.all(Array.from({ length: 8 }, () => pool.connect()));
  for (const client of held) client.release();
  return pool;
}

/** What {@link compare} times, and how. */
export interface CompareOptions {
  readonly name: string;
  readonly connections: 'client' | 'pool8';
  readonly rawSql: string;
  readonly sdkSql: string;
  readonly iterations: number;
  readonly warmup: number;
  /** Keys passed to `raw` and `sdk` are drawn from 1..rows. */
  readonly rows: number;
  readonly log: (line: string) => void;
}

/** Times `raw` and `sdk` interleaved (1 worker on a client, 8 on the pool) and logs the result. */
export async function compare(
  options: CompareOptions,
  raw: (id: number, i: number) => Promise<unknown>,
  sdk: (id: number, i: number) => Promise<unknown>,
): Promise<Comparison> {
  const { name, connections } = options;
  const concurrency = connections === 'client' ? 1 : 8;
  const { a, b, wallMs } = await interleave(raw, sdk, {
    iterations: options.iterations,
    warmup: options.warmup,
    concurrency,
    rows: options.rows,
  });
  const rawSummary = a.summary();
  const sdkSummary = b.summary();
  const comparison: Comparison = {
    name,
    connections,
    concurrency,
    rawSql: options.rawSql,
    sdkSql: options.sdkSql,
    raw: rawSummary,
    sdk: sdkSummary,
    medianRatio: ratio(sdkSummary.medianUs, rawSummary.medianUs),
    blockRatios: blockRatios(a, b, BLOCKS),
    addedUs: round(sdkSummary.medianUs - rawSummary.medianUs),
    p99Ratio: ratio(sdkSummary.p99Us, rawSummary.p99Us),
    opsPerSecond: round((a.count + b.count) / (wallMs / 1000)),
  };
  options.log(
    `${name.padEnd(22)} ${connections.padEnd(6)} raw ${rawSummary.medianUs}us  sdk ${sdkSummary.medianUs}us  x${comparison.medianRatio} [${Math.min(...comparison.blockRatios)}-${Math.max(...comparison.blockRatios)}]  (p99 ${rawSummary.p99Us} / ${sdkSummary.p99Us}us)`,
  );
  return comparison;
}

/**
 * The statements the SDK sends for `operation` on a repository in `stage` (after its
 * catalog check), captured through a pool-shaped spy: what the `/same-sql` rows send raw.
 */
export async function sdkStatements(
  migration: UsersMigration,
  pool: pg.Pool,
  stage: Stage,
  operation: (repo: Repository<User, 'id'>) => Promise<unknown>,
): Promise<string[]> {
  const seen: string[] = [];
  const spy = {
    query: (text: string, values?: unknown[]) => {
      seen.push(text);
      return pool.query(text, values);
    },
    connect: () => pool.connect(),
  };
  const repo = usersRepository(migration, spy, stage);
  await repo.check();
  seen.length = 0;
  await operation(repo);
  repo.close();
  return seen;
}
