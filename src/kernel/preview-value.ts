/**
 * A short, readable rendering of a value for error messages: `"ada"`, `42`, `7n`,
 * `{"a":1}`, cut at `max` characters. Used only for values the caller passed in, which
 * the caller already has; stored values never go through it.
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

/** `String(value)`, or a type tag for a value `String` can't convert (no prototype). */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
