/**
 * How numbers, times and stored values read on the page. A value that is not what it
 * should be shows as `-` or as it is, never as a made-up number.
 */

/** A count, rounded, with thousands separators. */
export function int(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

/** A rate in 0..1 as a percentage with `digits` decimals. */
export function pct(rate: unknown, digits = 2): string {
  return typeof rate === 'number' && Number.isFinite(rate) ? `${(rate * 100).toFixed(digits)}%` : '-';
}

/** A duration in milliseconds. */
export function ms(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '-';
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

/** An ISO-8601 time as the browser's local time of day. */
export function time(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString();
}

/** An ISO-8601 time as the browser's local date and time. */
export function dateTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** A stored value as JSON text; strings as they are. */
export function json(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** A bucket width: `30 s`, `2 min`. */
export function seconds(value: number): string {
  return value >= 60000 && value % 60000 === 0 ? `${value / 60000} min` : `${value / 1000} s`;
}

/** A time window: `30 min`, `2 h`. */
export function minutes(windowMs: number): string {
  return windowMs >= 3600000 && windowMs % 3600000 === 0
    ? `${windowMs / 3600000} h`
    : `${Math.round(windowMs / 60000)} min`;
}
