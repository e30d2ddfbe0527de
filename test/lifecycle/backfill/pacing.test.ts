import { describe, expect, it } from 'vitest';
import { nextBatchSize, pauseAfterBatch } from '../../../src/lifecycle/backfill/pacing.js';

it('pauseAfterBatch: pauseRatio times the batch plus delayMs, in whole milliseconds', () => {
  expect(pauseAfterBatch(25, { pauseRatio: 0.3, delayMs: 0 })).toBe(8);
  expect(pauseAfterBatch(24, { pauseRatio: 0.3, delayMs: 10 })).toBe(17);
  expect(pauseAfterBatch(25, { pauseRatio: 0, delayMs: 0 })).toBe(0);
  expect(pauseAfterBatch(1.5, { pauseRatio: 0.3, delayMs: 0 })).toBe(0);
  expect(pauseAfterBatch(2, { pauseRatio: 0.3, delayMs: 0 })).toBe(1);
  expect(pauseAfterBatch(0, { pauseRatio: 0.3, delayMs: 5 })).toBe(5);
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
