import { afterEach, describe, expect, it, vi } from 'vitest';
import { DecisionCache, MAX_SHARED } from '../../src/flags/decision-cache.js';

const live = Object.freeze({ stage: 'live' });
const off = Object.freeze({ stage: 'off' });

afterEach(() => {
  vi.useRealTimers();
});

describe('DecisionCache', () => {
  it('keeps a shared value until its time to live is up, then forgets it', () => {
    vi.useFakeTimers();
    const cache = new DecisionCache<object>(10);
    cache.set('m', live, 1000, true);
    vi.advanceTimersByTime(999);
    expect(cache.get('m')).toBe(live);
    expect(cache.peek('m')).toBe(live);
    vi.advanceTimersByTime(1);
    expect(cache.get('m')).toBeUndefined();
    expect(cache.peek('m')).toBeUndefined();
  });

  it('keeps a single entity value until its time to live is up, then forgets it', async () => {
    // lru-cache reads the real clock (it holds `performance` from its import on).
    const cache = new DecisionCache<object>(10);
    cache.set('m\u0000user-1', live, 200, false);
    expect(cache.get('m\u0000user-1')).toBe(live);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(cache.get('m\u0000user-1')).toBeUndefined();
  });

  it('a value set again takes its own time to live; the old timer does not drop it', () => {
    vi.useFakeTimers();
    const cache = new DecisionCache<object>(10);
    cache.set('m', live, 100, true);
    vi.advanceTimersByTime(80);
    cache.set('m', off, 100, true);
    vi.advanceTimersByTime(50);
    expect(cache.get('m')).toBe(off);
    vi.advanceTimersByTime(50);
    expect(cache.get('m')).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a key moves between the shared map and the LRU without leaving the other copy behind', () => {
    const cache = new DecisionCache<object>(10);
    cache.set('k', live, 10_000, false);
    cache.set('k', off, 10_000, true);
    expect(cache.get('k')).toBe(off);
    cache.set('k', live, 10_000, false);
    expect(cache.get('k')).toBe(live);
    cache.clear();
  });

  it('single entity values are bounded; shared values are not evicted by them', () => {
    const cache = new DecisionCache<object>(2);
    cache.set('m', off, 10_000, true);
    for (let i = 0; i < 5; i++) cache.set(`m\u0000user-${i}`, live, 10_000, false);
    expect(cache.get('m\u0000user-0')).toBeUndefined();
    expect(cache.get('m\u0000user-4')).toBe(live);
    expect(cache.get('m')).toBe(off);
    cache.clear();
  });

  it('a shared value whose timer is late expires by the clock within 64 hits', async () => {
    const cache = new DecisionCache<object>(10);
    cache.set('m', live, 20, true);
    // Keep the event loop from running timers past the time to live.
    const until = performance.now() + 40;
    while (performance.now() < until) {
      // busy
    }
    let hits = 0;
    while (hits < 1000 && cache.get('m') !== undefined) hits++;
    expect(hits).toBeLessThan(64);
    expect(cache.peek('m')).toBeUndefined();
  });

  it('a shared value whose timer never runs (set under fake timers) still expires', async () => {
    vi.useFakeTimers();
    const cache = new DecisionCache<object>(10);
    cache.set('m', live, 20, true);
    vi.useRealTimers();
    await new Promise((resolve) => setTimeout(resolve, 40));
    let hits = 0;
    while (hits < 1000 && cache.get('m') !== undefined) hits++;
    expect(hits).toBeLessThan(64);
  });

  it('past its bound, the shared map sends values to the LRU; expired ones make room', () => {
    const cache = new DecisionCache<object>(2);
    for (let i = 0; i < MAX_SHARED; i++) cache.set(`m${i}`, live, 300, true);
    cache.set('late-1', off, 10_000, true);
    cache.set('late-2', off, 10_000, true);
    cache.set('late-3', off, 10_000, true);
    expect(cache.peek('m0')).toBe(live);
    expect(cache.get('late-1')).toBeUndefined();
    expect(cache.get('late-3')).toBe(off);
    // Expired entries whose timers haven't run yet (the loop is busy) are dropped to make room.
    const until = performance.now() + 350;
    while (performance.now() < until) {
      // busy
    }
    cache.set('late-4', off, 10_000, true);
    expect(cache.peek('m0')).toBeUndefined();
    expect(cache.get('late-4')).toBe(off);
    cache.clear();
  });

  it('clear forgets every value and stops the timers', () => {
    vi.useFakeTimers();
    const cache = new DecisionCache<object>(10);
    cache.set('m', live, 1000, true);
    cache.set('m\u0000user-1', live, 1000, false);
    cache.clear();
    expect(cache.get('m')).toBeUndefined();
    expect(cache.get('m\u0000user-1')).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });
});
