import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, isRedacted, redactValue } from '../../src/shadow/redact.js';

const anything = fc.anything({
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
});

describe('redactValue', () => {
  it('redact: gives sha256: and 16 hex digits', () => {
    expect(redactValue('secret')).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(isRedacted(redactValue('secret'))).toBe(true);
    expect(isRedacted('secret')).toBe(false);
  });

  it('redact: never contains the value', () => {
    expect(redactValue('alice@example.com')).not.toContain('alice');
  });

  it('redact: is the SHA-256 of the canonical form (a fixed vector, so hashes stay stable across releases)', () => {
    expect(canonicalize({ b: [1, 'x'], a: null })).toBe('{"a":n,"b":[d1,s"x"]}');
    expect(redactValue('hello')).toBe('sha256:feb5aab0fa730a0b');
  });

  it('redact: same hash in another process', () => {
    const value = { b: 2n, a: [new Date(0), 'x'] };
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createHash } from 'node:crypto';
         process.stdout.write(createHash('sha256').update(process.argv[1], 'utf8').digest('hex').slice(0, 16));`,
        canonicalize(value),
      ],
      { encoding: 'utf8' },
    );
    expect(`sha256:${child.stdout}`).toBe(redactValue({ a: [new Date(0), 'x'], b: 2n }));
  });

  it('redact: object key order does not matter, nested too', () => {
    expect(redactValue({ a: 1, b: { c: 2, d: 3 } })).toBe(redactValue({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it('redact: different values give different hashes', () => {
    const values: unknown[] = [
      1,
      '1',
      1n,
      true,
      'true',
      null,
      undefined,
      'null',
      Number.NaN,
      Number.POSITIVE_INFINITY,
      [],
      {},
      [1],
      { '0': 1 },
      new Date(0),
      new Date(0).toISOString(),
      new Uint8Array([1]),
      [1, 2],
      [[1], 2],
      [1, [2]],
      '',
      ' ',
      '\uD800',
      '\uDC00',
      new Map([[1, 2]]),
      new Set([1, 2]),
      { a: null },
    ];
    const hashes = new Set(values.map(redactValue));
    expect(hashes.size).toBe(values.length);
  });

  it('redact: treats bigint, Date, binary, undefined and NaN deterministically', () => {
    expect(redactValue(10n)).toBe(redactValue(BigInt('10')));
    expect(redactValue(new Date('2024-01-01T00:00:00Z'))).toBe(redactValue(new Date(Date.UTC(2024, 0, 1))));
    expect(redactValue(new Date(Number.NaN))).toBe(redactValue(new Date('garbage')));
    expect(redactValue(Buffer.from([1, 2, 3]))).toBe(redactValue(new Uint8Array([1, 2, 3])));
    expect(redactValue(new Uint8Array([0, 1, 2, 3]).subarray(1))).toBe(redactValue(Buffer.from([1, 2, 3])));
    expect(redactValue(undefined)).toBe(redactValue(undefined));
    expect(redactValue(Number.NaN)).toBe(redactValue(0 / 0));
    expect(redactValue(-0)).toBe(redactValue(0));
    expect(redactValue({ a: 1, b: undefined })).toBe(redactValue({ a: 1 }));
    expect(redactValue([undefined])).not.toBe(redactValue([]));
    expect(redactValue(new Set([2, 1]))).toBe(redactValue(new Set([1, 2])));
    expect(
      redactValue(
        new Map([
          ['b', 1],
          ['a', 2],
        ]),
      ),
    ).toBe(
      redactValue(
        new Map([
          ['a', 2],
          ['b', 1],
        ]),
      ),
    );
  });

  it('redact: terminates on cycles', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(redactValue(a)).toMatch(/^sha256:/);
    expect(canonicalize(a)).toBe('{"self":^1,"x":d1}');
  });

  it('redact: key-order-insensitive for any object (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), anything), (record) => {
        const reversed: Record<string, unknown> = {};
        for (const key of Object.keys(record).reverse()) {
          Object.defineProperty(reversed, key, { value: record[key], enumerable: true });
        }
        expect(redactValue(reversed)).toBe(redactValue(record));
      }),
    );
  });

  it('redact: a structured clone hashes the same (property)', () => {
    fc.assert(
      fc.property(anything, (value) => {
        expect(redactValue(structuredClone(value))).toBe(redactValue(value));
      }),
    );
  });
});
