/**
 * Metric events as tests see them: a sink that keeps every event in order, so a test can
 * take the events one operation emitted, and a search through anything JSON-like for
 * values that must not be there (redaction).
 */
import type { MetricEvent, MetricsSink } from 'flagshift';

/** A sink that records every event. */
export interface EventLog extends MetricsSink {
  readonly events: MetricEvent[];
  /** The position to pass to {@link EventLog.since}. */
  mark(): number;
  /** Events recorded after `mark`. */
  since(mark: number): MetricEvent[];
  /** Events of one type recorded after `mark`. */
  ofType<T extends MetricEvent['type']>(type: T, mark?: number): Extract<MetricEvent, { type: T }>[];
}

/** Creates an {@link EventLog}. */
export function createEventLog(): EventLog {
  const events: MetricEvent[] = [];
  return {
    events,
    record(event) {
      events.push(event);
    },
    mark: () => events.length,
    since: (mark) => events.slice(mark),
    ofType: <T extends MetricEvent['type']>(type: T, mark = 0) =>
      events.slice(mark).filter((event): event is Extract<MetricEvent, { type: T }> => event.type === type),
  };
}

/** `JSON.stringify` that also writes bigints, Maps, Sets and binary data, so nothing is skipped in a search. */
export function dump(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v instanceof Map) return [...v.entries()];
    if (v instanceof Set) return [...v];
    if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
    if (v instanceof Error) return { name: v.name, message: v.message, stack: v.stack, cause: v.cause };
    if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return '[cycle]';
      seen.add(v);
    }
    return v;
  });
}

/**
 * The needles found in `haystack` (dumped), also looking for their JSON-escaped forms, so
 * a value with quotes or non-ASCII characters is found however it was serialized.
 */
export function leaked(haystack: unknown, needles: readonly string[]): string[] {
  const text = typeof haystack === 'string' ? haystack : dump(haystack);
  return needles.filter((needle) => {
    const escaped = JSON.stringify(needle).slice(1, -1);
    return text.includes(needle) || text.includes(escaped);
  });
}
