/**
 * How fast a backfill goes: the batch size adapts towards a target duration, and a pause
 * after each batch gives the server core back to the application.
 */

/**
 * Short enough that an application write stuck behind a batch's row locks waits a few
 * milliseconds, rarely; long enough that per-batch costs (five round trips, the checkpoint)
 * stay small. Measured with bench/ part 4's load (1,000,000 rows, 500 ops/s): at 200 ms the
 * load's slowest operation took 40 to 60 ms, and waits on the batch's transaction were most
 * of its waits; at 25 ms lock waits were about a tenth as frequent and the slowest operation
 * took 5 to 20 ms in most runs, for about 6% less throughput.
 */
export const DEFAULT_TARGET_BATCH_MS = 25;

/**
 * The pause after a batch, as a multiple of its duration. Back to back, batches keep a
 * server core busy, and on a small server that alone moves the application's slowest
 * requests: with bench/ part 4's load on two cores, in paired runs (not counting each
 * process's first backfill), batches with no pause raised the load's p99 1.2 to 4.4 times
 * its baseline (median 1.9, over 2 in three runs of eight), a pause of 0.3 times each batch
 * 1.1 to 2.0 times (median 1.5, eleven runs), at 0.42 to 0.69 of a single statement's
 * throughput.
 */
export const DEFAULT_PAUSE_RATIO = 0.3;

/**
 * The pause, in milliseconds, after a batch that took `batchMs`, rounded to a whole
 * millisecond: timers count whole ones (a fractional delay is cut short), so 7.5 waits 8
 * and anything under half a millisecond not at all.
 */
export function pauseAfterBatch(
  batchMs: number,
  settings: { readonly pauseRatio: number; readonly delayMs: number },
): number {
  return Math.round(settings.delayMs + settings.pauseRatio * batchMs);
}

/** Chooses the next batch size from the last one's duration, at most halving or doubling. */
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
  settings: { readonly targetBatchMs: number; readonly pauseRatio: number; readonly delayMs: number },
  hook: boolean,
): string {
  const { targetBatchMs, pauseRatio, delayMs } = settings;
  const batches = `batches of about ${targetBatchMs} ms`;
  if (hook) return `${batches}, each followed by the throttle hook`;
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
