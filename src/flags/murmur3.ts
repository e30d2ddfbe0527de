/**
 * MurmurHash3, x86 32-bit variant: the hash flagd's `fractional` operation buckets by.
 * Two entry points: one over bytes (the reference definition) and one over the UTF-8
 * encoding of two strings, which encodes on the fly so the routing hot path allocates
 * neither an encoded buffer nor a concatenated string.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixBlock(h: number, k: number): number {
  let block = Math.imul(k, C1);
  block = (block << 15) | (block >>> 17);
  block = Math.imul(block, C2);
  let next = h ^ block;
  next = (next << 13) | (next >>> 19);
  return (Math.imul(next, 5) + 0xe6546b64) | 0;
}

function mixTail(h: number, k: number): number {
  let tail = Math.imul(k, C1);
  tail = (tail << 15) | (tail >>> 17);
  return h ^ Math.imul(tail, C2);
}

function finalize(h: number, length: number): number {
  let x = h ^ length;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * MurmurHash3 x86_32 of `bytes`.
 *
 * @param bytes - The input.
 * @param seed - The seed, taken as a uint32. @default 0
 * @returns The hash as an unsigned 32-bit integer.
 *
 * @example
 * ```ts
 * murmur3(new TextEncoder().encode('hello')); // 0x248bfa47
 * ```
 */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  const length = bytes.length;
  const blocksEnd = length & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocksEnd; i += 4) {
    h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const rest = length & 3;
  if (rest !== 0) {
    let k = bytes[i]!;
    if (rest > 1) k |= bytes[i + 1]! << 8;
    if (rest > 2) k |= bytes[i + 2]! << 16;
    h = mixTail(h, k);
  }
  return finalize(h, length);
}

// Streaming state for murmur3Utf8. Module-level rather than an object so hashing allocates
// nothing; JavaScript runs one call to completion at a time, so sharing it is safe.
let streamHash = 0;
let streamBlock = 0;
let streamLength = 0;

function pushByte(byte: number): void {
  const shift = (streamLength & 3) << 3;
  streamBlock |= byte << shift;
  streamLength++;
  if (shift === 24) {
    streamHash = mixBlock(streamHash, streamBlock);
    streamBlock = 0;
  }
}

function pushCodePoint(code: number): void {
  if (code < 0x80) {
    pushByte(code);
  } else if (code < 0x800) {
    pushByte(0xc0 | (code >> 6));
    pushByte(0x80 | (code & 0x3f));
  } else if (code < 0x10000) {
    pushByte(0xe0 | (code >> 12));
    pushByte(0x80 | ((code >> 6) & 0x3f));
    pushByte(0x80 | (code & 0x3f));
  } else {
    pushByte(0xf0 | (code >> 18));
    pushByte(0x80 | ((code >> 12) & 0x3f));
    pushByte(0x80 | ((code >> 6) & 0x3f));
    pushByte(0x80 | (code & 0x3f));
  }
}

// A high surrogate waits here for its low half, which may begin the next string: the hash
// is of the concatenation, where the two halves form one code point.
let pendingHigh = 0;

// Encodes exactly as TextEncoder does, including U+FFFD for a lone surrogate, so the
// hash always equals murmur3(new TextEncoder().encode(text)).
function pushUtf8(text: string): void {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (pendingHigh !== 0) {
      const high = pendingHigh;
      pendingHigh = 0;
      if (unit >= 0xdc00 && unit <= 0xdfff) {
        pushCodePoint(0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
        continue;
      }
      pushCodePoint(0xfffd);
    }
    if (unit < 0x80) pushByte(unit);
    else if (unit >= 0xd800 && unit <= 0xdbff) pendingHigh = unit;
    else if (unit >= 0xdc00 && unit <= 0xdfff) pushCodePoint(0xfffd);
    else pushCodePoint(unit);
  }
}

// The common case, keys and flag keys in ASCII, where UTF-8 is one byte per code unit: the
// same hash with the state in locals, several times faster than the byte stream below.
// Returns -1 (never a hash: those are unsigned) at the first non-ASCII code unit.
function murmur3Ascii(first: string, second: string, seed: number): number {
  const firstLength = first.length;
  const length = firstLength + second.length;
  let h = seed | 0;
  let block = 0;
  for (let i = 0; i < length; i++) {
    const unit = i < firstLength ? first.charCodeAt(i) : second.charCodeAt(i - firstLength);
    if (unit >= 0x80) return -1;
    const shift = (i & 3) << 3;
    block |= unit << shift;
    if (shift === 24) {
      h = mixBlock(h, block);
      block = 0;
    }
  }
  if ((length & 3) !== 0) h = mixTail(h, block);
  return finalize(h, length);
}

/**
 * MurmurHash3 x86_32 of the UTF-8 encoding of `first + second`, computed without
 * building either the concatenation or the encoded bytes. Lone surrogates encode as
 * U+FFFD, as `TextEncoder` does.
 *
 * @param first - The leading text (for bucketing, the flag key).
 * @param second - The trailing text (for bucketing, the targeting key). @default ''
 * @param seed - The seed, taken as a uint32. @default 0
 * @returns The hash as an unsigned 32-bit integer.
 *
 * @example
 * ```ts
 * murmur3Utf8('fractional-flag', 'jack') === murmur3(new TextEncoder().encode('fractional-flagjack')); // true
 * ```
 */
export function murmur3Utf8(first: string, second = '', seed = 0): number {
  const ascii = murmur3Ascii(first, second, seed);
  if (ascii >= 0) return ascii;
  streamHash = seed | 0;
  streamBlock = 0;
  streamLength = 0;
  pendingHigh = 0;
  pushUtf8(first);
  pushUtf8(second);
  if (pendingHigh !== 0) {
    pendingHigh = 0;
    pushCodePoint(0xfffd);
  }
  if ((streamLength & 3) !== 0) streamHash = mixTail(streamHash, streamBlock);
  return finalize(streamHash, streamLength);
}

/**
 * The hash state after an ASCII prefix (a flag key): its whole 4-byte blocks mixed, the
 * bytes of its last partial block pending. Bucketing hashes flag key + entity key for every
 * entity; starting from this state hashes only the entity key's bytes.
 */
export interface Murmur3Prefix {
  readonly text: string;
  readonly seed: number;
  readonly hash: number;
  readonly block: number;
  readonly length: number;
}

/** The state after `prefix`, or undefined when it is not all ASCII (then hash with {@link murmur3Utf8}). */
export function murmur3AsciiPrefix(prefix: string, seed = 0): Murmur3Prefix | undefined {
  let h = seed | 0;
  let block = 0;
  const length = prefix.length;
  for (let i = 0; i < length; i++) {
    const unit = prefix.charCodeAt(i);
    if (unit >= 0x80) return undefined;
    const shift = (i & 3) << 3;
    block |= unit << shift;
    if (shift === 24) {
      h = mixBlock(h, block);
      block = 0;
    }
  }
  return { text: prefix, seed, hash: h, block, length };
}

/** `murmur3Utf8(prefix.text, second, prefix.seed)`, hashing only `second`'s bytes when it is ASCII. */
export function murmur3Utf8After(prefix: Murmur3Prefix, second: string): number {
  let h = prefix.hash;
  let block = prefix.block;
  let length = prefix.length;
  const n = second.length;
  for (let i = 0; i < n; i++) {
    const unit = second.charCodeAt(i);
    if (unit >= 0x80) return murmur3Utf8(prefix.text, second, prefix.seed);
    const shift = (length & 3) << 3;
    block |= unit << shift;
    length++;
    if (shift === 24) {
      h = mixBlock(h, block);
      block = 0;
    }
  }
  if ((length & 3) !== 0) h = mixTail(h, block);
  return finalize(h, length);
}
