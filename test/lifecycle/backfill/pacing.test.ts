import { expect, it } from 'vitest';
import { pauseAfterBatch } from '../../../src/lifecycle/backfill/pacing.js';

it('pauseAfterBatch: pauseRatio times the batch plus delayMs, in whole milliseconds', () => {
  expect(pauseAfterBatch(25, { pauseRatio: 0.3, delayMs: 0 })).toBe(8);
  expect(pauseAfterBatch(24, { pauseRatio: 0.3, delayMs: 10 })).toBe(17);
  expect(pauseAfterBatch(25, { pauseRatio: 0, delayMs: 0 })).toBe(0);
  expect(pauseAfterBatch(1.5, { pauseRatio: 0.3, delayMs: 0 })).toBe(0);
  expect(pauseAfterBatch(2, { pauseRatio: 0.3, delayMs: 0 })).toBe(1);
  expect(pauseAfterBatch(0, { pauseRatio: 0.3, delayMs: 5 })).toBe(5);
});
