import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketOf, isInReadPercentage } from '../../src/flags/bucketing.js';
import { murmur3, murmur3AsciiPrefix, murmur3Utf8, murmur3Utf8After } from '../../src/flags/murmur3.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

// flagd's fractional: variants in order, each owning the next `weight` buckets.
function fractional(flagKey: string, targetingKey: string, variants: readonly (readonly [string, number])[]): string {
  const total = variants.reduce((sum, [, weight]) => sum + weight, 0);
  const bucket = bucketOf(flagKey, targetingKey, total);
  let rangeEnd = 0;
  for (const [variant, weight] of variants) {
    rangeEnd += weight;
    if (bucket < rangeEnd) return variant;
  }
  throw new Error('unreachable');
}

describe('murmur3_x86_32', () => {
  it.each([
    ['hello', 0x248bfa47],
    ['ejOoVL', 0],
    ['SI7p-', 2147483647],
    ['6LvT0', 2147483648],
    ['ceQdGm', 4294967295],
  ])('edge case: %s hashes to %i as an unsigned 32-bit integer', (text, expected) => {
    expect(murmur3(utf8(text))).toBe(expected);
    expect(murmur3Utf8(text)).toBe(expected);
  });

  it('hashes the empty input to the seed mix (0 for seed 0)', () => {
    expect(murmur3(new Uint8Array(0))).toBe(0);
    expect(murmur3(new Uint8Array(0), 1)).toBe(0x514e28b7);
  });

  it('takes the seed as a uint32', () => {
    expect(murmur3(utf8('hello'), 0xffffffff)).toBe(murmur3(utf8('hello'), -1));
    expect(murmur3(utf8('hello'), 1)).not.toBe(murmur3(utf8('hello'), 0));
  });

  it('a surrogate pair split between flag key and targeting key hashes as one code point', () => {
    expect(murmur3Utf8('\ud83d', '\ude80')).toBe(murmur3(utf8('🚀')));
  });

  it('streaming UTF-8 hashing equals hashing the TextEncoder bytes of the concatenation', () => {
    // Lone surrogates included: TextEncoder writes U+FFFD for them, and so must we.
    const unit = fc.oneof(
      fc.constantFrom('\ud800', '\udfff', '\ud83d'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    const text = fc.string({ unit });
    fc.assert(
      fc.property(text, text, fc.integer({ min: 0, max: 0xffffffff }), (first, second, seed) => {
        expect(murmur3Utf8(first, second, seed)).toBe(murmur3(utf8(first + second), seed));
      }),
      { numRuns: 1000 },
    );
  });
  it('hashing on from an ASCII prefix state equals hashing the concatenation, whatever follows it', () => {
    const ascii = fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((code) => String.fromCharCode(code)) });
    const any = fc.oneof(ascii, fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(ascii, any, fc.integer({ min: 0, max: 0xffffffff }), (first, second, seed) => {
        const prefix = murmur3AsciiPrefix(first, seed);
        expect(prefix).toBeDefined();
        expect(murmur3Utf8After(prefix!, second)).toBe(murmur3(utf8(first + second), seed));
      }),
      { numRuns: 300 },
    );
    expect(murmur3AsciiPrefix('flag-é')).toBeUndefined();
  });

  it('buckets by a non-ASCII flag key as by its UTF-8 bytes', () => {
    const h = murmur3(utf8('drapeau-éjack'));
    expect(bucketOf('drapeau-é', 'jack', 100)).toBe(Math.floor((h * 100) / 2 ** 32));
  });
});

describe('bucketing: flagd fractional compatibility', () => {
  const suits = [
    ['clubs', 25],
    ['diamonds', 25],
    ['hearts', 25],
    ['spades', 25],
  ] as const;

  it.each([
    ['jack', 'hearts'],
    ['queen', 'spades'],
    ['ten', 'clubs'],
    ['nine', 'diamonds'],
  ])('fractional-flag: %s gets %s', (name, variant) => {
    expect(fractional('fractional-flag', name, suits)).toBe(variant);
    const index = Math.floor(bucketOf('fractional-flag', name, 100) / 25);
    expect(suits[index]?.[0]).toBe(variant);
  });

  it('bucket = (h * T) >> 32, exactly, for T up to 10000 and beyond', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.integer({ min: 1, max: 0x7fffffff }), (flagKey, key, total) => {
        const h = murmur3(utf8(flagKey + key));
        const expected = Number((BigInt(h) * BigInt(total)) >> 32n);
        expect(bucketOf(flagKey, key, total)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('buckets lie in [0, T)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.integer({ min: 1, max: 10000 }), (flagKey, key, total) => {
        const bucket = bucketOf(flagKey, key, total);
        expect(Number.isInteger(bucket)).toBe(true);
        expect(bucket).toBeGreaterThanOrEqual(0);
        expect(bucket).toBeLessThan(total);
      }),
    );
  });

  it('rejects a total weight that is not a positive 31-bit integer', () => {
    for (const total of [0, -1, 2.5, Number.NaN, 2 ** 31]) {
      expect(() => bucketOf('f', 'k', total)).toThrow(RangeError);
    }
  });

  it('non-ASCII targeting key: hashes UTF-8 bytes, not UTF-16 code units', () => {
    const flagKey = 'fractional-flag';
    const key = 'Zoë-東京-🚀';
    const h = murmur3(utf8(flagKey + key));
    expect(murmur3Utf8(flagKey, key)).toBe(h);
    expect(bucketOf(flagKey, key, 10000)).toBe(Math.floor((h * 10000) / 2 ** 32));

    const text = flagKey + key;
    const utf16le = new Uint8Array(text.length * 2);
    const lowBytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      utf16le[2 * i] = unit & 0xff;
      utf16le[2 * i + 1] = unit >> 8;
      lowBytes[i] = unit & 0xff;
    }
    expect(h).not.toBe(murmur3(utf16le));
    expect(h).not.toBe(murmur3(lowBytes));
  });
});

describe('read percentage', () => {
  const flagKey = fc.string({ minLength: 1, maxLength: 40 });
  const entity = fc.string({ maxLength: 40 });

  it('0 admits nobody and 100 admits everybody', () => {
    fc.assert(
      fc.property(flagKey, entity, (f, k) => {
        expect(isInReadPercentage(0, f, k)).toBe(false);
        expect(isInReadPercentage(100, f, k)).toBe(true);
      }),
    );
  });

  it('whole percentages in basis points agree with flagd fractional at T = 100', () => {
    fc.assert(
      fc.property(flagKey, entity, fc.integer({ min: 0, max: 100 }), (f, k, percent) => {
        const flagd = fractional(f, k, [
          ['new', percent],
          ['old', 100 - percent],
        ]);
        expect(isInReadPercentage(percent, f, k)).toBe(flagd === 'new');
        expect(isInReadPercentage(percent, f, k)).toBe(bucketOf(f, k, 100) < percent);
      }),
      { numRuns: 5000 },
    );
  });

  it('basis-point percentages agree with flagd fractional at T = 10000', () => {
    fc.assert(
      fc.property(flagKey, entity, fc.integer({ min: 0, max: 10000 }), (f, k, basisPoints) => {
        const flagd = fractional(f, k, [
          ['new', basisPoints],
          ['old', 10000 - basisPoints],
        ]);
        expect(isInReadPercentage(basisPoints / 100, f, k)).toBe(flagd === 'new');
      }),
      { numRuns: 2000 },
    );
  });

  it('raising the percentage never moves an entity out', () => {
    const percent = fc.double({ min: 0, max: 100, noNaN: true });
    fc.assert(
      fc.property(flagKey, entity, percent, percent, (f, k, a, b) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        if (isInReadPercentage(low, f, k)) expect(isInReadPercentage(high, f, k)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('admits about the requested share of entities', () => {
    let admitted = 0;
    for (let i = 0; i < 20000; i++) if (isInReadPercentage(12.5, 'users-rename.read-percent', `user-${i}`)) admitted++;
    expect(admitted / 20000).toBeGreaterThan(0.11);
    expect(admitted / 20000).toBeLessThan(0.14);
  });
});
