/**
 * How fast a backfill goes: the batch size adapts towards a target duration, and the
 * pause after each batch follows evidence that the backfill is in the application's way
 * (batches slowing down on a busy server, the application's latency), so on an idle
 * server batches run back to back.
 */

/**
 * Short enough that an application write stuck behind a batch's row locks waits a few
 * milliseconds, rarely; long enough that per-batch costs (a round trip, a commit) stay small.
 * An update of a row the running batch holds waits for the batch to commit: the chance
 * of that and the wait both grow with the batch. Measured with bench/ part 4's load
 * (500 ops/s of reads and dual writes): at 200 ms the load's slowest operation took 40
 * to 60 ms, and waits on the batch's transaction were most of its waits; at 25 ms they
 * were about a tenth as frequent, but still most of the load's p99 (its dual writes'
 * p99 1 to 4 ms, its reads' near the load alone); at 10 ms the load's p99 during the
 * backfill was lower than at 25 ms in each of six pairs of runs of part 4 alone (median
 * ratio to the load alone 2.2 against 4.2), for about 4% less throughput.
 */
export const DEFAULT_TARGET_BATCH_MS = 10;

/**
 * The most the adaptive pause waits after a batch, as a multiple of the batch's duration:
 * at 1, a contended server gets at least half of the backfill's time back.
 */
export const DEFAULT_MAX_PAUSE_RATIO = 1;

/**
 * A batch slower per row than this multiple of the recent floor counts as contended.
 * Below it, batches of one backfill on an idle server vary by themselves (a cold page, a
 * checkpoint, the application's own load).
 */
export const CONTENTION_TOLERANCE = 1.25;

/** Full batches whose fastest per-row time is the floor a batch is compared with. */
export const FLOOR_BATCHES = 100;

/**
 * Where the application's latency (`latencyMs()`) starts to lengthen the pause, as a
 * fraction of `maxLatencyMs`: from there the pause grows to `maxPauseRatio` at the limit,
 * where the health gate stops the batches.
 */
export const LATENCY_EASE_FROM = 0.5;

/** What a worker knows after a batch, for {@link pauseAfterBatch}. */
export interface PaceSignals {
  /** The batch's duration, in milliseconds. */
  readonly batchMs: number;
  /** Rows it scanned. */
  readonly rows: number;
  /** The fastest milliseconds per row of the recent full batches, this one included ({@link RecentFloor}). */
  readonly floorMsPerRow: number | undefined;
  /** The application's latency as the health gate read it last, in milliseconds. */
  readonly latencyMs: number | undefined;
}

/** The pacing options {@link pauseAfterBatch} follows. */
export interface PaceSettings {
  /** A fixed pause, as a multiple of the batch's duration, instead of the adaptive one. */
  readonly pauseRatio: number | undefined;
  /** The most the adaptive pause waits, as a multiple of the batch's duration. */
  readonly maxPauseRatio: number;
  /** Milliseconds added to every pause. */
  readonly delayMs: number;
  /** The latency at which the health gate stops the batches (`Infinity`: no latency signal). */
  readonly maxLatencyMs: number;
}

/** The pause after a batch, and what chose it. */
export interface Pause {
  /** Milliseconds, whole. */
  readonly ms: number;
  /** As a multiple of the batch's duration, `delayMs` apart. */
  readonly ratio: number;
  /**
   * `fixed`: `pauseRatio`; `contention`: the batch ran slower per row than its recent
   * floor; `latency`: the application's latency is over half its limit; `none`: no sign
   * of harm, the next batch runs at once (after `delayMs`).
   */
  readonly cause: 'fixed' | 'contention' | 'latency' | 'none';
}

/**
 * The pause after a batch. With `pauseRatio`, that multiple of the batch's duration.
 * Otherwise it follows evidence that the backfill is in the application's way, and is 0
 * without any:
 *
 * - Contention: a batch that took `s` times its recent floor per row (over
 *   {@link CONTENTION_TOLERANCE}) found the server busy, with the application or anything
 *   else; the pause is `s - 1` times the batch, the time the contention cost it.
 * - Latency: from {@link LATENCY_EASE_FROM} of `maxLatencyMs` up, the pause grows in
 *   proportion to `maxPauseRatio` at the limit.
 *
 * The larger of the two counts, at most `maxPauseRatio`; `delayMs` is added. Rounded to a
 * whole millisecond: timers count whole ones (a fractional delay is cut short).
 */
export function pauseAfterBatch(signals: PaceSignals, settings: PaceSettings): Pause {
  const { batchMs, rows, floorMsPerRow, latencyMs } = signals;
  const at = (ratio: number, cause: Pause['cause']): Pause => ({
    ms: Math.round(settings.delayMs + ratio * batchMs),
    ratio,
    cause: ratio > 0 ? cause : 'none',
  });
  if (settings.pauseRatio !== undefined) return at(settings.pauseRatio, 'fixed');
  const slowdown =
    rows > 0 && floorMsPerRow !== undefined && floorMsPerRow > 0 ? batchMs / rows / floorMsPerRow : Number.NaN;
  const contention = slowdown > CONTENTION_TOLERANCE ? slowdown - 1 : 0;
  const strain =
    latencyMs !== undefined && Number.isFinite(settings.maxLatencyMs)
      ? (latencyMs / settings.maxLatencyMs - LATENCY_EASE_FROM) / (1 - LATENCY_EASE_FROM)
      : 0;
  const latency = Math.max(0, Math.min(1, strain)) * settings.maxPauseRatio;
  const ratio = Math.min(settings.maxPauseRatio, Math.max(contention, latency));
  return at(ratio, latency > contention ? 'latency' : 'contention');
}

/**
 * The fastest milliseconds per row of the last {@link FLOOR_BATCHES} full batches: what a
 * batch costs when nothing else wants the server. A range's last batch, smaller than
 * asked for, carries the per-batch costs over fewer rows and is left out.
 */
export class RecentFloor {
  readonly #window: number[] = [];
  readonly #size: number;

  constructor(size = FLOOR_BATCHES) {
    this.#size = size;
  }

  /** Adds a full batch's milliseconds per row; returns the floor, that batch included. */
  add(msPerRow: number): number {
    if (Number.isFinite(msPerRow) && msPerRow > 0) {
      this.#window.push(msPerRow);
      if (this.#window.length > this.#size) this.#window.shift();
    }
    return this.floor ?? msPerRow;
  }

  /** The floor, `undefined` before the first full batch. */
  get floor(): number | undefined {
    return this.#window.length === 0 ? undefined : Math.min(...this.#window);
  }
}

/**
 * Chooses the next batch size from the last one's duration, at most halving or doubling.
 * Only after a full batch: a range's last batch takes fewer rows than `size`, and sized by
 * its time the next range's first batch would take up to twice as long as asked, holding
 * its rows' locks (and the application's writes to them) that much longer.
 */
export function nextBatchSize(
  size: number,
  durationMs: number,
  settings: { readonly targetBatchMs: number; readonly minBatchSize: number; readonly maxBatchSize: number },
): number {
  // Halving or doubling at most: one slow batch (a checkpoint, a cold cache) must not
  // collapse the size, and one fast one must not make the next batch hold locks too long.
  const factor = Math.min(2, Math.max(0.5, settings.targetBatchMs / Math.max(durationMs, 1e-3)));
  return Math.min(settings.maxBatchSize, Math.max(settings.minBatchSize, Math.round(size * factor)));
}

/** How a worker paces its batches, for its pass event. */
export function pacingSummary(
  settings: {
    readonly targetBatchMs: number;
    readonly pauseRatio: number | undefined;
    readonly maxPauseRatio: number;
    readonly delayMs: number;
  },
  hook: boolean,
): string {
  const { targetBatchMs, pauseRatio, maxPauseRatio, delayMs } = settings;
  const batches = `batches of about ${targetBatchMs} ms`;
  if (hook) return `${batches}, each followed by the throttle hook`;
  const delay = delayMs > 0 ? ` + ${delayMs} ms` : '';
  if (pauseRatio === undefined) {
    return `${batches}, each followed by a pause of up to ${maxPauseRatio}x its time while the server is contended${delay}`;
  }
  const pauses = [...(pauseRatio > 0 ? [`${pauseRatio}x its time`] : []), ...(delayMs > 0 ? [`${delayMs} ms`] : [])];
  return pauses.length === 0
    ? `${batches}, back to back`
    : `${batches}, each followed by a pause of ${pauses.join(' + ')}`;
}

/** Sleeps `ms`, waking early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
