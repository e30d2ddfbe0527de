/**
 * What makes a backfill yield: the database's health read between batches (replicas'
 * replay lag, the oldest open transaction, lock waits on the table) and the application's
 * own latency. A backfill checks at most every `healthCheckMs`, and while something is over
 * its limit it runs no batch and checks again every `healthCheckMs` until all are back
 * under.
 */
import type { Queryable } from '../../kernel/index.js';
import { sleep } from './pacing.js';

/** One health signal over its limit. */
export interface HealthBreach {
  readonly signal: 'replica-lag' | 'transaction-age' | 'lock-wait' | 'latency' | 'replica-unreachable';
  /** The reading, in milliseconds (`NaN` for an unreachable replica). */
  readonly valueMs: number;
  readonly limitMs: number;
  /** For the progress line: `replica lag 1.8 s > 1 s`. */
  readonly message: string;
}

/** The limits of the health signals, in milliseconds; `Infinity` turns a signal off. */
export interface HealthLimits {
  readonly maxReplicaLagMs: number;
  readonly maxTransactionAgeMs: number;
  readonly maxLockWaitMs: number;
  readonly maxLatencyMs: number;
}

/** Readings of one check, in milliseconds; `undefined` when not read. */
export interface HealthReadings {
  readonly replicaLagMs?: number | undefined;
  readonly transactionAgeMs?: number | undefined;
  readonly lockWaitMs?: number | undefined;
  readonly latencyMs?: number | undefined;
  /** Replicas that could not be read, with why. */
  readonly unreachable?: readonly string[];
}

/** `350 ms`, `1 s`, `1.8 s`: readings and limits as an operator reads them. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The first reading over its limit, in the order the fields name them; `undefined` when all are under. */
export function firstBreach(readings: HealthReadings, limits: HealthLimits): HealthBreach | undefined {
  const unreachable = readings.unreachable?.[0];
  if (unreachable !== undefined && Number.isFinite(limits.maxReplicaLagMs)) {
    return {
      signal: 'replica-unreachable',
      valueMs: Number.NaN,
      limitMs: limits.maxReplicaLagMs,
      message: `replica lag unknown: ${unreachable}`,
    };
  }
  const checks = [
    ['replica-lag', 'replica lag', readings.replicaLagMs, limits.maxReplicaLagMs],
    ['transaction-age', 'oldest transaction', readings.transactionAgeMs, limits.maxTransactionAgeMs],
    ['lock-wait', 'lock wait on the table', readings.lockWaitMs, limits.maxLockWaitMs],
    ['latency', 'application latency', readings.latencyMs, limits.maxLatencyMs],
  ] as const;
  for (const [signal, label, valueMs, limitMs] of checks) {
    if (valueMs !== undefined && valueMs > limitMs) {
      return { signal, valueMs, limitMs, message: `${label} ${formatMs(valueMs)} > ${formatMs(limitMs)}` };
    }
  }
  return undefined;
}

/**
 * On the primary, one round trip: the replay lag of every standby streaming from it, the
 * age of the oldest transaction holding a snapshot or an xid, and the longest current lock
 * wait of a session waiting on, or holding a lock of, the table (`$1`).
 *
 * A standby's `replay_lag` is measured by the primary from the standby's replies, and it
 * keeps growing while replay is stuck; but it keeps its last value for a while after the
 * standby caught up, so a standby that has replayed everything the primary wrote counts 0.
 * Other sessions' rows read as NULL (so 0) without `pg_read_all_stats`. The transaction
 * age counts to `clock_timestamp()`: `now()` is when this statement's own transaction
 * began, and a transaction that began after it would read a negative age.
 */
const PRIMARY_HEALTH_SQL = `SELECT
  (SELECT coalesce(max(CASE WHEN r.replay_lsn >= pg_current_wal_lsn() THEN 0
                            ELSE extract(epoch FROM r.replay_lag) * 1000 END), 0)
     FROM pg_stat_replication AS r WHERE $2::boolean)::float8 AS standby_lag_ms,
  (SELECT greatest(coalesce(extract(epoch FROM clock_timestamp() - min(a.xact_start)) * 1000, 0), 0)
     FROM pg_stat_activity AS a
    WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
      AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL))::float8 AS transaction_age_ms,
  (SELECT coalesce(extract(epoch FROM now() - min(w.waitstart)) * 1000, 0)
     FROM pg_locks AS w
    WHERE NOT w.granted AND w.pid <> pg_backend_pid()
      AND EXISTS (SELECT 1 FROM pg_locks AS t WHERE t.pid = w.pid AND t.relation = to_regclass($1)))::float8 AS lock_wait_ms`;

/**
 * On a replica: how far its replay is behind, as the time since the commit it replayed
 * last, while it has received WAL it has not replayed (0 when it has replayed all it
 * received). Measured where the lag is, so it also sees cascaded standbys and ones that
 * are not connected to the primary right now. While the primary commits (a running
 * backfill does), the last commit is recent and the reading is the lag.
 */
const REPLICA_LAG_SQL = `SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0)
  END::float8 AS lag_ms`;

/** What a {@link HealthGate} reads. */
export interface HealthSources {
  /** The primary the backfill runs on. */
  readonly primary: Queryable;
  /** The backfilled table, quoted (`"public"."users"`). */
  readonly table: string;
  /** Replicas to read the lag on. */
  readonly replicas: readonly Queryable[];
  /** Whether to read the lag of the primary's streaming standbys from `pg_stat_replication`. */
  readonly standbys: boolean;
  /** The application's latency, in milliseconds. */
  readonly latency: (() => number | undefined | Promise<number | undefined>) | undefined;
}

/** Reads every signal once. A replica that fails to answer is reported, not thrown; the primary's errors are thrown. */
export async function readHealth(sources: HealthSources, limits: HealthLimits): Promise<HealthReadings> {
  const unreachable: string[] = [];
  const replicaLag = Promise.all(
    sources.replicas.map(async (replica, index) => {
      try {
        const { rows } = await replica.query<{ lag_ms: number }>(REPLICA_LAG_SQL);
        return Number(rows[0]?.lag_ms ?? 0);
      } catch (error) {
        unreachable.push(`replica ${index + 1} did not answer (${(error as Error).message})`);
        return 0;
      }
    }),
  );
  const latency = (async () => {
    try {
      const value = await sources.latency?.();
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    } catch {
      // The application's own measurement failing must not stop or fail the backfill.
      return undefined;
    }
  })();
  const { rows } = await sources.primary.query<{
    standby_lag_ms: number;
    transaction_age_ms: number;
    lock_wait_ms: number;
  }>(PRIMARY_HEALTH_SQL, [sources.table, sources.standbys && Number.isFinite(limits.maxReplicaLagMs)]);
  const primary = rows[0]!;
  const lags = await replicaLag;
  return {
    replicaLagMs: Math.max(Number(primary.standby_lag_ms), ...lags),
    transactionAgeMs: Number(primary.transaction_age_ms),
    lockWaitMs: Number(primary.lock_wait_ms),
    latencyMs: await latency,
    unreachable,
  };
}

/** Holds a worker between batches while the database or the application is under strain. */
export class HealthGate {
  readonly #sources: HealthSources;
  readonly #limits: HealthLimits;
  readonly #intervalMs: number;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #latencyMs: number | undefined;

  constructor(sources: HealthSources, limits: HealthLimits & { readonly healthCheckMs: number }) {
    this.#sources = sources;
    this.#limits = limits;
    this.#intervalMs = limits.healthCheckMs;
  }

  /** The application's latency as the last check read it (`undefined` before one, or without `latencyMs`). */
  get latencyMs(): number | undefined {
    return this.#latencyMs;
  }

  /** Whether any signal is on: without one, {@link pass} never reads anything. */
  get watching(): boolean {
    const { maxReplicaLagMs, maxTransactionAgeMs, maxLockWaitMs, maxLatencyMs } = this.#limits;
    const lag = Number.isFinite(maxReplicaLagMs) && (this.#sources.standbys || this.#sources.replicas.length > 0);
    const latency = this.#sources.latency !== undefined && Number.isFinite(maxLatencyMs);
    return lag || latency || Number.isFinite(maxTransactionAgeMs) || Number.isFinite(maxLockWaitMs);
  }

  /**
   * Resolves when the next batch may run: at once when the last check is recent, else
   * after a check finds every signal under its limit. `onBreach` hears every check over a
   * limit (the reading changes while it waits); `onClear`, the first check under after one.
   * Stops waiting, without error, when `signal` aborts.
   */
  async pass(
    signal: AbortSignal,
    onBreach: (breach: HealthBreach) => void,
    onClear: (afterMs: number) => void,
  ): Promise<void> {
    if (!this.watching) return;
    let since: number | undefined;
    while (!signal.aborted) {
      if (since === undefined && performance.now() - this.#checkedAt < this.#intervalMs) return;
      const readings = await readHealth(this.#sources, this.#limits);
      const breach = firstBreach(readings, this.#limits);
      this.#checkedAt = performance.now();
      this.#latencyMs = readings.latencyMs;
      if (breach === undefined) {
        if (since !== undefined) onClear(this.#checkedAt - since);
        return;
      }
      since ??= this.#checkedAt;
      onBreach(breach);
      await sleep(this.#intervalMs, signal);
    }
  }
}
