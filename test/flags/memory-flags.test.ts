import { describe, expect, it, vi } from 'vitest';
import { createMemoryFlags } from '../../src/flags/memory-flags.js';

const ctx = { targetingKey: 'user-1' };

describe('memory flags', () => {
  it('resolves the values it was created with and the ones set later', async () => {
    const flags = createMemoryFlags({ stage: 'dualwrite' });
    expect(await flags.resolve('stage', 'string', ctx)).toBe('dualwrite');
    flags.set('percent', 12.5);
    expect(await flags.resolve('percent', 'number', ctx)).toBe(12.5);
    expect(flags.get('stage')).toBe('dualwrite');
    expect(flags.get('missing')).toBeUndefined();
  });

  it('rejects a flag that was never set', async () => {
    await expect(createMemoryFlags().resolve('nope', 'string', ctx)).rejects.toThrow('flag "nope" is not set');
  });

  it('returns the stored value whatever type is asked for', async () => {
    const flags = createMemoryFlags({ stage: 3 });
    expect(await flags.resolve('stage', 'string', ctx)).toBe(3);
  });

  it('notifies listeners on set, and once for setMany', () => {
    const flags = createMemoryFlags();
    const listener = vi.fn();
    flags.onConfigurationChanged(listener);
    flags.set('a', 'off');
    expect(listener).toHaveBeenCalledTimes(1);
    flags.setMany({ a: 'live', b: 50 });
    expect(listener).toHaveBeenCalledTimes(2);
    expect(flags.get('a')).toBe('live');
    expect(flags.get('b')).toBe(50);
  });

  it('unsubscribes each subscription separately', () => {
    const flags = createMemoryFlags();
    const listener = vi.fn();
    const first = flags.onConfigurationChanged(listener);
    flags.onConfigurationChanged(listener);
    first();
    flags.set('a', 1);
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('a throwing listener does not keep the others from hearing', () => {
    const flags = createMemoryFlags();
    const other = vi.fn();
    flags.onConfigurationChanged(() => {
      throw new Error('boom');
    });
    flags.onConfigurationChanged(other);
    expect(() => flags.set('a', 1)).not.toThrow();
    expect(other).toHaveBeenCalledOnce();
  });

  it('fail "error": rejects until restored, without notifying', async () => {
    const flags = createMemoryFlags({ stage: 'live' });
    const listener = vi.fn();
    flags.onConfigurationChanged(listener);
    flags.fail('stage', 'error');
    await expect(flags.resolve('stage', 'string', ctx)).rejects.toThrow('simulated error');
    flags.restore('stage');
    expect(await flags.resolve('stage', 'string', ctx)).toBe('live');
    expect(listener).not.toHaveBeenCalled();
  });

  it('fail { value }: returns that value', async () => {
    const flags = createMemoryFlags({ percent: 10 });
    flags.fail('percent', { value: '50' });
    expect(await flags.resolve('percent', 'number', ctx)).toBe('50');
  });

  it('fail "hang": never settles until restored, then settles with the current value', async () => {
    const flags = createMemoryFlags({ stage: 'shadow' });
    flags.fail('stage', 'hang');
    let result: unknown = 'pending';
    const pending = flags.resolve('stage', 'string', ctx);
    void pending.then((value) => {
      result = value;
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(result).toBe('pending');
    flags.set('stage', 'live');
    flags.restore('stage');
    expect(await pending).toBe('live');
  });

  it('counts resolve calls per flag key', async () => {
    const flags = createMemoryFlags({ a: 1 });
    await flags.resolve('a', 'number', ctx);
    await flags.resolve('a', 'number', ctx);
    expect(flags.calls.get('a')).toBe(2);
    expect(flags.calls.get('b')).toBeUndefined();
  });
});
