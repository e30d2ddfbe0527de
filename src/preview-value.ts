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
    if (text === undefined) return String(value);
    return text.length > max ? `${text.slice(0, max)}...` : text;
  } catch {
    return String(value);
  }
}
