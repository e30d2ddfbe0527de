/**
 * The write ledger the fault suites and the soak judge by: it must catch a lost write, a
 * phantom write and a result that contradicts earlier writes, and accept a write in doubt
 * either way. Without a database.
 */
import { describe, expect, it } from 'vitest';
import { WriteLedger } from '../support/model-ledger.js';

const ledger = () => new WriteLedger<{ v: string }>((row) => row.v);

describe('write ledger', () => {
  it('accepts the last acknowledged write and finds a lost one', () => {
    const l = ledger();
    l.acknowledged('1', { op: 'insert', entity: { v: 'a' } });
    l.acknowledged('1', { op: 'update', patch: { v: 'b' }, found: true });
    l.final('1', { v: 'b' });
    expect(l.violations).toEqual([]);
    const lost = ledger();
    lost.acknowledged('1', { op: 'upsert', entity: { v: 'a' } });
    lost.acknowledged('1', { op: 'upsert', entity: { v: 'b' } });
    lost.final('1', { v: 'a' });
    expect(lost.violations.map((v) => v.invariant)).toEqual([
      'every acknowledged write is in the final table (zero lost writes)',
    ]);
  });

  it('accepts a failed write as happened or not, and nothing else', () => {
    for (const seen of [{ v: 'a' }, { v: 'b' }]) {
      const l = ledger();
      l.acknowledged('1', { op: 'insert', entity: { v: 'a' } });
      l.failed('1', { op: 'update', patch: { v: 'b' } });
      l.read('1', seen);
      expect(l.violations, `state ${seen.v}`).toEqual([]);
    }
    const phantom = ledger();
    phantom.failed('1', { op: 'delete' });
    phantom.final('1', { v: 'never written' });
    expect(phantom.violations).toHaveLength(1);
  });

  it('a read narrows a write in doubt: later reads must agree with it', () => {
    const l = ledger();
    l.acknowledged('1', { op: 'insert', entity: { v: 'a' } });
    l.failed('1', { op: 'update', patch: { v: 'b' } });
    l.read('1', { v: 'b' });
    l.final('1', { v: 'a' });
    expect(l.violations).toHaveLength(1);
  });

  it('finds an acknowledged result that no earlier write explains', () => {
    const l = ledger();
    l.acknowledged('1', { op: 'update', patch: { v: 'x' }, found: true });
    l.acknowledged('2', { op: 'insert', entity: { v: 'a' } });
    l.acknowledged('2', { op: 'insert', entity: { v: 'b' } });
    expect(l.violations.map((v) => v.key)).toEqual(['1', '2']);
    const assumed = ledger();
    assumed.assume('1', { v: 'legacy' });
    assumed.acknowledged('1', { op: 'update', patch: { v: 'x' }, found: true });
    assumed.acknowledged('1', { op: 'delete', found: true });
    assumed.final('1', undefined);
    expect(assumed.violations).toEqual([]);
  });
});
