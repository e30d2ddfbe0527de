/**
 * Sticky bucketing, compatible with flagd's `fractional` operation (flagd >= 0.15,
 * flagd-core >= 3): a team that ramps in flagd and a team that ramps with flagshift's
 * read-percentage flag see the same entities move (docs/STAGES.md, "Bucketing").
 *
 * The bucketing string is hashed as UTF-8, as flagd's Go core does. flagd's JavaScript
 * core hashes UTF-16 code units instead, so for non-ASCII keys the two flagd cores
 * disagree; flagshift follows the Go core (and the other byte-oriented SDKs).
 */
import { type Murmur3Prefix, murmur3AsciiPrefix, murmur3Utf8, murmur3Utf8After } from './murmur3.js';

const TWO_POW_32 = 4294967296;
// Up to here h * T < 2^53, so the float product and the division by a power of two are exact.
const FLOAT_EXACT_MAX_WEIGHT = 0x200000;
const MAX_TOTAL_WEIGHT = 0x7fffffff;
const BASIS_POINTS = 10000;

// Flag keys are few and every entity's bucket starts with one: its hash state is kept, so
// bucketing an entity hashes the entity key alone. Bounded so a caller that buckets by
// ever-new flag keys can't grow it without end; `null` marks a non-ASCII flag key.
const MAX_PREFIXES = 1024;
const prefixes = new Map<string, Murmur3Prefix | null>();

function hashOf(flagKey: string, targetingKey: string): number {
  let prefix = prefixes.get(flagKey);
  if (prefix === undefined) {
    if (prefixes.size >= MAX_PREFIXES) prefixes.clear();
    prefix = murmur3AsciiPrefix(flagKey) ?? null;
    prefixes.set(flagKey, prefix);
  }
  return prefix === null ? murmur3Utf8(flagKey, targetingKey) : murmur3Utf8After(prefix, targetingKey);
}

/**
 * The bucket of an entity: `(murmur3_x86_32(UTF-8(flagKey + targetingKey)) * totalWeight) >> 32`,
 * an integer in `[0, totalWeight)`. With weighted variants taken in order, an entity gets the
 * first variant whose cumulative weight exceeds its bucket, exactly as flagd's `fractional`.
 *
 * @param flagKey - The flag key (flagd prefixes the targeting key with it).
 * @param targetingKey - The entity's key.
 * @param totalWeight - The sum of the variant weights: a positive integer up to 2^31 - 1.
 * @throws RangeError when `totalWeight` is not such an integer.
 *
 * @example
 * ```ts
 * const variants = ['clubs', 'diamonds', 'hearts', 'spades'];
 * variants[Math.floor(bucketOf('fractional-flag', 'jack', 100) / 25)]; // 'hearts'
 * ```
 */
export function bucketOf(flagKey: string, targetingKey: string, totalWeight: number): number {
  const h = hashOf(flagKey, targetingKey);
  if (totalWeight > 0 && totalWeight <= FLOAT_EXACT_MAX_WEIGHT && Number.isInteger(totalWeight)) {
    return Math.floor((h * totalWeight) / TWO_POW_32);
  }
  if (Number.isInteger(totalWeight) && totalWeight > 0 && totalWeight <= MAX_TOTAL_WEIGHT) {
    return Number((BigInt(h) * BigInt(totalWeight)) >> 32n);
  }
  throw new RangeError(`total weight ${totalWeight} is not an integer between 1 and ${MAX_TOTAL_WEIGHT}`);
}

/**
 * Whether an entity falls inside a read percentage, in basis points: the bucket with
 * total weight 10000 is compared with `round(percent * 100)`. `0` admits nobody, `100`
 * everybody, and for whole percentages the answer equals flagd's with total weight 100.
 * Raising the percentage never moves an entity out.
 *
 * @param percent - The read percentage, 0 to 100; fractions down to 0.01 count.
 * @param flagKey - The flag key to bucket by. To move the same entities as a flagd
 *   `fractional` rule, use the key of the flag that rule is on.
 * @param targetingKey - The entity's key.
 *
 * @example
 * ```ts
 * isInReadPercentage(12.5, 'users-rename.stage', 'user-42');
 * ```
 */
export function isInReadPercentage(percent: number, flagKey: string, targetingKey: string): boolean {
  const threshold = Math.round(percent * 100);
  // Buckets run from 0 to 9999: at 100% everybody is in and at 0% nobody, without hashing.
  if (threshold >= BASIS_POINTS) return true;
  if (threshold <= 0) return false;
  return bucketOf(flagKey, targetingKey, BASIS_POINTS) < threshold;
}
