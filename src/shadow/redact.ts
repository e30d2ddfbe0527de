/**
 * Redaction of values placed in mismatch samples. A sample must say that two values
 * differ, and let an operator see that the same bad value recurs, without carrying the
 * value itself into logs, dashboards or a metrics backend.
 */
import { createHash } from 'node:crypto';

/** Prefix of every redacted value, naming the hash so a reader knows what they look at. */
const PREFIX = 'sha256:';

/**
 * The canonical text form of a value: equal for values that are logically equal, and
 * different for values that are not, in every process and on every platform.
 *
 * - Object keys are sorted (UTF-16 code unit order); properties whose value is
 *   `undefined` are left out, as JSON does, so `{ a: undefined }` equals `{}`.
 * - Each primitive carries a type tag: `1`, `1n`, `"1"` and `true` all differ.
 * - `NaN` equals `NaN`; `-0` equals `0`.
 * - A `Date` is its instant (`new Date(NaN)` is `invalid`); a `Buffer` and a `Uint8Array`
 *   with the same bytes are equal; other typed arrays and `ArrayBuffer` are their bytes.
 * - A `Map` is its entries and a `Set` its members, both sorted by canonical form.
 * - Class instances are their own enumerable string-keyed properties, like plain objects.
 * - A cycle is written as the number of levels up to the repeated object.
 *
 * This is the equality {@link deepEqual} in `compare.ts` implements without allocating;
 * the two agree on every value without functions or symbols.
 */
export function canonicalize(value: unknown): string {
  return write(value, []);
}

/**
 * A stable, short, one-way digest of `value`: `sha256:` and the first 16 hex digits
 * (64 bits) of the SHA-256 of its canonical form (`canonicalize`).
 *
 * The same logical value gives the same digest in every process, so repeated mismatches
 * of one value can be recognised across hosts and restarts. No salt is used, for that
 * very reason: values from a small domain (booleans, small numbers, enum labels) can be
 * recovered by hashing the candidates. Redaction keeps values out of dashboards; it is not
 * encryption.
 *
 * @example
 * ```ts
 * import { redactValue } from 'flagshift';
 * redactValue({ a: 1, b: 2 }) === redactValue({ b: 2, a: 1 }); // true
 * ```
 */
export function redactValue(value: unknown): string {
  const digest = createHash('sha256').update(canonicalize(value), 'utf8').digest('hex');
  return PREFIX + digest.slice(0, 16);
}

/** Whether `value` looks like the output of {@link redactValue}. */
export function isRedacted(value: unknown): value is string {
  return typeof value === 'string' && value.length === PREFIX.length + 16 && value.startsWith(PREFIX);
}

function write(value: unknown, ancestors: object[]): string {
  switch (typeof value) {
    case 'undefined':
      return 'u';
    case 'boolean':
      return value ? 't' : 'f';
    // String(-0) is "0" and String(NaN) is "NaN": exactly the equality deepEqual uses.
    case 'number':
      return 'd' + String(value);
    case 'bigint':
      return 'i' + value.toString();
    // JSON.stringify escapes lone surrogates, which UTF-8 would otherwise merge into U+FFFD.
    case 'string':
      return 's' + JSON.stringify(value);
    case 'symbol':
      return 'y' + JSON.stringify(value.description ?? '');
    case 'function':
      return 'F' + JSON.stringify(value.name);
  }
  if (value === null) return 'n';
  const object = value as object;
  const level = ancestors.indexOf(object);
  if (level !== -1) return '^' + String(ancestors.length - level);
  if (object instanceof Date) {
    const time = object.getTime();
    return 'D' + (Number.isNaN(time) ? 'invalid' : object.toISOString());
  }
  const bytes = bytesOf(object);
  if (bytes !== undefined) return 'b' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

  ancestors.push(object);
  let text: string;
  if (Array.isArray(object)) {
    const parts: string[] = [];
    for (let i = 0; i < object.length; i++) parts.push(write(object[i], ancestors));
    text = '[' + parts.join(',') + ']';
  } else if (object instanceof Map) {
    const parts: string[] = [];
    for (const [k, v] of object) parts.push(write(k, ancestors) + ':' + write(v, ancestors));
    text = 'M[' + parts.sort().join(',') + ']';
  } else if (object instanceof Set) {
    const parts: string[] = [];
    for (const member of object) parts.push(write(member, ancestors));
    text = 'S[' + parts.sort().join(',') + ']';
  } else {
    const record = object as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const v = record[key];
      if (v !== undefined) parts.push(JSON.stringify(key) + ':' + write(v, ancestors));
    }
    text = '{' + parts.join(',') + '}';
  }
  ancestors.pop();
  return text;
}

/**
 * The bytes of a binary value (`Uint8Array`, `Buffer`, any typed array, `DataView`,
 * `ArrayBuffer`), or `undefined` for anything else. Shared with `compare.ts` so both
 * agree on what counts as binary.
 *
 * @internal
 */
export function bytesOf(value: object): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return undefined;
}
