/** Which side a failure that cleared on a retry without the comparison columns is counted against. */
import { DriverError } from 'flagshift';
import { describe, expect, it } from 'vitest';
import { blamedSide } from '../../src/repository/index.js';

describe('blamedSide', () => {
  it('blames the compared side for errors its columns can cause', () => {
    for (const code of ['42703', '42P01', '42501', '22P02', '22003', '21000', '0A000', '39000']) {
      expect(blamedSide({ code }, 'old', 'new'), code).toBe('new');
      expect(blamedSide({ code }, 'new', 'old'), code).toBe('old');
    }
  });

  it('keeps transient and unknown failures on the served side', () => {
    for (const error of [
      { code: '40001' },
      { code: '40P01' },
      { code: '57014' },
      { code: '08006' },
      { code: '53300' },
    ]) {
      expect(blamedSide(error, 'old', 'new'), error.code).toBe('old');
    }
    expect(blamedSide(new Error('Connection terminated unexpectedly'), 'old', 'new')).toBe('old');
    expect(blamedSide({ code: 'ECONNRESET' }, 'new', 'old')).toBe('new');
    expect(blamedSide(undefined, 'old', 'new')).toBe('old');
  });

  it("reads the SQLSTATE of flagshift's DriverError and of a wrapped cause", () => {
    expect(blamedSide(new DriverError('x', { sqlState: '42703' }), 'old', 'new')).toBe('new');
    expect(blamedSide(new DriverError('x', { sqlState: '40001' }), 'old', 'new')).toBe('old');
    expect(blamedSide(new Error('wrapped', { cause: { code: '42703' } }), 'old', 'new')).toBe('new');
  });
});
