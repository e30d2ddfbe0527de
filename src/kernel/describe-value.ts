/**
 * How values appear in error messages. Only values the caller passed in go through here
 * (options, entities, keys), which the caller already has; stored values never do.
 */

/**
 * A short, readable rendering of a value: `"ada"`, `42`, `7n`, `{"a":1}`, cut at `max`
 * characters. For values whose content helps (a key, a field value).
 */
export function previewValue(value: unknown, max = 60): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return typeof value === 'symbol' ? value.toString() : String(value);
    return text.length > max ? `${text.slice(0, max)}...` : text;
  } catch {
    // JSON can't show it (a cycle, a bigint inside); neither may String (no prototype).
    return safeString(value);
  }
}

/**
 * A value by its kind, for options: strings quoted, `7n`, numbers and `null` as they are,
 * arrays listed, objects and functions named (`an object`, `a function`).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return safeString(value);
  return Array.isArray(value) ? `[${value.map(describeValue).join(', ')}]` : 'an object';
}

/** `String(value)`, or a type tag for a value `String` can't convert (no prototype). */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
