/**
 * Shows a backfill's progress on stderr: a live bar (rows done, rate, ETA) when stderr is
 * a terminal, otherwise one plain line every few seconds, so logs stay readable.
 */
import cliProgress from 'cli-progress';
import type { BackfillProgress } from '../../src/lifecycle/index.js';
import type { CliStreams } from './cli-context.js';

/** Where the backfill stands over all of this process's workers. */
export interface CombinedProgress {
  readonly rowsDone: number;
  readonly totalEstimate: number;
  readonly rowsPerSecond: number;
  readonly etaMs: number | undefined;
}

/** Combines the progress of workers sharing one pass: each sees the whole pass, so take the furthest. */
export function combineProgress(workers: readonly BackfillProgress[]): CombinedProgress {
  const rowsDone = Math.max(0, ...workers.map((p) => p.rowsDone));
  const totalEstimate = Math.max(rowsDone, ...workers.map((p) => p.totalEstimate));
  const rowsPerSecond = Math.max(0, ...workers.map((p) => p.rowsPerSecond));
  const done = workers.length > 0 && workers.every((p) => p.state === 'done');
  const etaMs = done ? 0 : rowsPerSecond > 0 ? ((totalEstimate - rowsDone) * 1000) / rowsPerSecond : undefined;
  return { rowsDone, totalEstimate, rowsPerSecond, etaMs };
}

/** `1.2k`, `3.4M`: short counts for a status line. */
export function shortCount(n: number): string {
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** `45s`, `3m 20s`, `2h 5m`. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '?';
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

/** A progress display. */
export interface ProgressDisplay {
  update(progress: CombinedProgress): void;
  /** Clears the bar (or prints the last line) before the summary. */
  stop(): void;
}

/** A bar on a terminal, lines elsewhere. */
export function createProgressDisplay(
  streams: CliStreams,
  label: string,
  options: { readonly interactive?: boolean; readonly lineIntervalMs?: number } = {},
): ProgressDisplay {
  const interactive = options.interactive ?? streams.stderr.isTTY === true;
  if (interactive) {
    const bar = new cliProgress.SingleBar(
      {
        stream: streams.stderr,
        format: `${label} {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {etaText}`,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 30,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(progress) {
        // Nothing to draw until the pass is cut into ranges and has a size.
        if (progress.totalEstimate === 0 && progress.rowsDone === 0) return;
        const payload = { rate: shortCount(progress.rowsPerSecond), etaText: formatDuration(progress.etaMs) };
        if (!started) {
          bar.start(Math.max(progress.totalEstimate, 1), progress.rowsDone, payload);
          started = true;
          return;
        }
        bar.setTotal(Math.max(progress.totalEstimate, 1));
        bar.update(progress.rowsDone, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  const interval = options.lineIntervalMs ?? 2000;
  let lastAt = 0;
  let last: CombinedProgress | undefined;
  let lastPrinted: CombinedProgress | undefined;
  const print = (progress: CombinedProgress) => {
    const percent = progress.totalEstimate > 0 ? Math.floor((progress.rowsDone * 100) / progress.totalEstimate) : 100;
    streams.stderr.write(
      `${label}: ${progress.rowsDone}/${progress.totalEstimate} rows (${percent}%), ${shortCount(progress.rowsPerSecond)} rows/s, eta ${formatDuration(progress.etaMs)}\n`,
    );
    lastPrinted = progress;
  };
  return {
    update(progress) {
      // Nothing to say until the pass is cut into ranges and has a size.
      if (progress.totalEstimate === 0 && progress.rowsDone === 0) return;
      last = progress;
      const now = Date.now();
      if (now - lastAt >= interval) {
        lastAt = now;
        print(progress);
      }
    },
    stop() {
      if (last !== undefined && last !== lastPrinted) print(last);
    },
  };
}
