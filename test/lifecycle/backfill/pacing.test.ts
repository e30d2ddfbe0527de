import { describe, expect, it } from 'vitest';
import {
  CONTENTION_TOLERANCE,
  nextBatchSize,
  type PaceSettings,
  type PaceSignals,
  pacingSummary,
  pauseAfterBatch,
  RecentFloor,
} from '../../../src/lifecycle/backfill/pacing.js';

const adaptive: PaceSettings = { pauseRatio: undefined, maxPauseRatio: 1, delayMs: 0, maxLatencyMs: Infinity };
/** A batch of 1000 rows that took `batchMs`, against a floor of 0.02 ms per row (20 ms). */
const batch = (batchMs: number, more: Partial<PaceSignals> = {}): PaceSignals => ({
  batchMs,
  rows: 1000,
  floorMsPerRow: 0.02,
  latencyMs: undefined,
  ...more,
});

describe('pauseAfterBatch: a fixed pauseRatio', () => {
  it('pauseRatio times the batch plus delayMs, in whole milliseconds, whatever the signals', () => {
    const fixed = (pauseRatio: number, delayMs = 0): PaceSettings => ({ ...adaptive, pauseRatio, delayMs });
    expect(pauseAfterBatch(batch(25), fixed(0.3))).toEqual({ ms: 8, ratio: 0.3, cause: 'fixed' });
    expect(pauseAfterBatch(batch(24), fixed(0.3, 10)).ms).toBe(17);
    expect(pauseAfterBatch(batch(25), fixed(0))).toEqual({ ms: 0, ratio: 0, cause: 'none' });
    expect(pauseAfterBatch(batch(1.5), fixed(0.3)).ms).toBe(0);
    expect(pauseAfterBatch(batch(2), fixed(0.3)).ms).toBe(1);
    expect(pauseAfterBatch(batch(0), fixed(0.3, 5)).ms).toBe(5);
    // A slow batch, or the application's latency, changes nothing.
    expect(pauseAfterBatch(batch(80, { latencyMs: 90 }), { ...fixed(0.3), maxLatencyMs: 100 }).ms).toBe(24);
  });
});

describe('pauseAfterBatch: adaptive', () => {
  it('no sign of harm: no pause, so an idle server runs batches back to back', () => {
    expect(pauseAfterBatch(batch(20), adaptive)).toEqual({ ms: 0, ratio: 0, cause: 'none' });
    // Noise under the tolerance is not contention.
    expect(pauseAfterBatch(batch(20 * CONTENTION_TOLERANCE), adaptive).ms).toBe(0);
    // The first batch has no floor yet but its own.
    expect(pauseAfterBatch(batch(20, { floorMsPerRow: undefined }), adaptive).ms).toBe(0);
    expect(pauseAfterBatch(batch(20, { rows: 0 }), adaptive).ms).toBe(0);
  });

  it('contention: a batch s times slower per row than the floor pauses s - 1 times its duration', () => {
    expect(pauseAfterBatch(batch(30), adaptive)).toEqual({ ms: 15, ratio: 0.5, cause: 'contention' });
    expect(pauseAfterBatch(batch(26), adaptive).ms).toBe(8);
    // Per row: twice the rows in twice the time is no slower.
    expect(pauseAfterBatch(batch(40, { rows: 2000 }), adaptive).ms).toBe(0);
    expect(pauseAfterBatch(batch(30, { rows: 500 }), { ...adaptive, maxPauseRatio: 3 })).toEqual({
      ms: 60,
      ratio: 2,
      cause: 'contention',
    });
  });

  it('contention: at most maxPauseRatio times the batch, plus delayMs', () => {
    expect(pauseAfterBatch(batch(100), adaptive)).toEqual({ ms: 100, ratio: 1, cause: 'contention' });
    expect(pauseAfterBatch(batch(100), { ...adaptive, maxPauseRatio: 0.5 }).ms).toBe(50);
    expect(pauseAfterBatch(batch(100), { ...adaptive, maxPauseRatio: 0 })).toEqual({ ms: 0, ratio: 0, cause: 'none' });
    expect(pauseAfterBatch(batch(20), { ...adaptive, delayMs: 7 }).ms).toBe(7);
    expect(pauseAfterBatch(batch(30), { ...adaptive, delayMs: 7 }).ms).toBe(22);
  });

  it('latency: from half of maxLatencyMs the pause grows to maxPauseRatio at the limit', () => {
    const watched = { ...adaptive, maxLatencyMs: 100 };
    expect(pauseAfterBatch(batch(20, { latencyMs: 50 }), watched).ms).toBe(0);
    expect(pauseAfterBatch(batch(20, { latencyMs: 75 }), watched)).toEqual({ ms: 10, ratio: 0.5, cause: 'latency' });
    expect(pauseAfterBatch(batch(20, { latencyMs: 100 }), watched).ratio).toBe(1);
    expect(pauseAfterBatch(batch(20, { latencyMs: 400 }), watched).ratio).toBe(1);
    expect(pauseAfterBatch(batch(20, { latencyMs: 90 }), { ...watched, maxPauseRatio: 2 }).ratio).toBeCloseTo(1.6);
    // Without a limit the reading is no signal.
    expect(pauseAfterBatch(batch(20, { latencyMs: 1e6 }), adaptive).ms).toBe(0);
  });

  it('the larger of contention and latency counts', () => {
    const watched = { ...adaptive, maxLatencyMs: 100 };
    expect(pauseAfterBatch(batch(30, { latencyMs: 60 }), watched)).toEqual({ ms: 15, ratio: 0.5, cause: 'contention' });
    expect(pauseAfterBatch(batch(30, { latencyMs: 90 }), watched).cause).toBe('latency');
  });
});

describe('RecentFloor: the fastest per-row time of the recent full batches', () => {
  it('is the minimum of the window, the new batch included', () => {
    const floor = new RecentFloor(3);
    expect(floor.floor).toBeUndefined();
    expect(floor.add(0.03)).toBe(0.03);
    expect(floor.add(0.02)).toBe(0.02);
    expect(floor.add(0.05)).toBe(0.02);
    expect(floor.add(0.04)).toBe(0.02);
    // The 0.02 batch leaves the window: a lasting change of cost becomes the floor.
    expect(floor.add(0.06)).toBe(0.04);
    expect(floor.floor).toBe(0.04);
  });

  it('ignores readings that are no duration', () => {
    const floor = new RecentFloor();
    expect(floor.add(Number.NaN)).toBeNaN();
    expect(floor.add(0)).toBe(0);
    expect(floor.floor).toBeUndefined();
    floor.add(0.5);
    floor.add(Number.POSITIVE_INFINITY);
    expect(floor.floor).toBe(0.5);
  });
});

describe('pacingSummary', () => {
  const base = { targetBatchMs: 25, pauseRatio: undefined, maxPauseRatio: 1, delayMs: 0 };
  it('says how the pause is chosen', () => {
    expect(pacingSummary(base, false)).toBe(
      'batches of about 25 ms, each followed by a pause of up to 1x its time while the server is contended',
    );
    expect(pacingSummary({ ...base, delayMs: 5 }, false)).toMatch(/contended \+ 5 ms$/);
    expect(pacingSummary({ ...base, pauseRatio: 0.3 }, false)).toBe(
      'batches of about 25 ms, each followed by a pause of 0.3x its time',
    );
    expect(pacingSummary({ ...base, pauseRatio: 0 }, false)).toBe('batches of about 25 ms, back to back');
    expect(pacingSummary(base, true)).toBe('batches of about 25 ms, each followed by the throttle hook');
  });
});

describe('nextBatchSize: adapts towards the target batch time, bounded', () => {
  const settings = { targetBatchMs: 25, minBatchSize: 10, maxBatchSize: 10_000 };

  it('scales by target over duration', () => {
    expect(nextBatchSize(1000, 25, settings)).toBe(1000);
    expect(nextBatchSize(1000, 20, settings)).toBe(1250);
    expect(nextBatchSize(1000, 40, settings)).toBe(625);
  });

  it('at most halves or doubles in one step', () => {
    expect(nextBatchSize(1000, 1000, settings)).toBe(500);
    expect(nextBatchSize(1000, 1, settings)).toBe(2000);
    expect(nextBatchSize(1000, 0, settings)).toBe(2000);
  });

  it('stays within [minBatchSize, maxBatchSize]', () => {
    expect(nextBatchSize(12, 1000, settings)).toBe(10);
    expect(nextBatchSize(8000, 1, settings)).toBe(10_000);
  });
});
