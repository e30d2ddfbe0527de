import { describe, expect, it } from 'vitest';
import { firstBreach, formatMs, type HealthLimits } from '../../../src/lifecycle/backfill/health.js';

const limits: HealthLimits = {
  maxReplicaLagMs: 1000,
  maxTransactionAgeMs: 300_000,
  maxLockWaitMs: 500,
  maxLatencyMs: Number.POSITIVE_INFINITY,
};

describe('health limits', () => {
  it('formatMs: milliseconds under a second, else seconds to one decimal', () => {
    expect(formatMs(350.4)).toBe('350 ms');
    expect(formatMs(1000)).toBe('1 s');
    expect(formatMs(1840)).toBe('1.8 s');
    expect(formatMs(300_000)).toBe('300 s');
  });

  it('firstBreach: none while every reading is at or under its limit', () => {
    expect(
      firstBreach({ replicaLagMs: 1000, transactionAgeMs: 299_999, lockWaitMs: 500, latencyMs: 10_000 }, limits),
    ).toBeUndefined();
  });

  it('firstBreach: names the signal, its reading and its limit', () => {
    expect(firstBreach({ replicaLagMs: 1800 }, limits)).toEqual({
      signal: 'replica-lag',
      valueMs: 1800,
      limitMs: 1000,
      message: 'replica lag 1.8 s > 1 s',
    });
    expect(firstBreach({ replicaLagMs: 0, lockWaitMs: 750 }, limits)?.message).toBe(
      'lock wait on the table 750 ms > 500 ms',
    );
    expect(firstBreach({ transactionAgeMs: 301_000 }, limits)?.message).toBe('oldest transaction 301 s > 300 s');
    expect(firstBreach({ latencyMs: 90 }, { ...limits, maxLatencyMs: 50 })?.message).toBe(
      'application latency 90 ms > 50 ms',
    );
  });

  it('firstBreach: replica lag comes first, and a replica that did not answer holds like a lagging one', () => {
    expect(firstBreach({ replicaLagMs: 2000, lockWaitMs: 900 }, limits)?.signal).toBe('replica-lag');
    expect(firstBreach({ replicaLagMs: 0, unreachable: ['replica 1 did not answer (refused)'] }, limits)).toMatchObject(
      {
        signal: 'replica-unreachable',
        message: 'replica lag unknown: replica 1 did not answer (refused)',
      },
    );
  });

  it('firstBreach: a limit of Infinity (an option set to false) is never exceeded', () => {
    const off = { ...limits, maxReplicaLagMs: Number.POSITIVE_INFINITY };
    expect(firstBreach({ replicaLagMs: 1e9, unreachable: ['replica 1 did not answer'] }, off)).toBeUndefined();
  });
});
