/**
 * The router's plan cache: bounded, and on eviction a text looked up since the sweep last
 * passed it outlives one that was not (second chance).
 */
import { expect, it } from 'vitest';
import { PlanCache } from '../../src/sql/plan-cache.js';

it('keeps at most its size, evicting the oldest text not looked up since', () => {
  const cache = new PlanCache<number>(3);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  expect(cache.get('a')).toBe(1);
  cache.set('d', 4);
  expect(cache.size).toBe(3);
  expect(cache.get('b')).toBeUndefined();
  expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
});

it('evicts a text looked up once before the second sweep reaches it again', () => {
  const cache = new PlanCache<number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.get('a');
  cache.get('b');
  // Both were used: the sweep clears both marks, then evicts the oldest, 'a'.
  cache.set('c', 3);
  expect(cache.get('a')).toBeUndefined();
  expect([cache.get('b'), cache.get('c')]).toEqual([2, 3]);
});

it('replaces the plan of a text it keeps without evicting another', () => {
  const cache = new PlanCache<number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('a', 10);
  expect([cache.get('a'), cache.get('b'), cache.size]).toEqual([10, 2, 2]);
});

it('refuses a size that is not a positive integer', () => {
  expect(() => new PlanCache(0)).toThrow(/positive integer, got 0/);
  expect(() => new PlanCache(1.5)).toThrow(RangeError);
});
