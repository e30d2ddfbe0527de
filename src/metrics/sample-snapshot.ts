/**
 * Mismatch samples as a snapshot shows them: raw values made JSON-safe, redacted ones
 * unchanged.
 */
import { bytesOf } from '../shadow/index.js';
import type { MismatchSample } from './events.js';
import type { JsonValue, MismatchSampleSnapshot } from './metrics-snapshot.js';

/** `sample` as a snapshot shows it; see {@link MismatchSampleSnapshot} for how raw values are made JSON-safe. */
export function sampleSnapshot(sample: MismatchSample): MismatchSampleSnapshot {
  return {
    migration: sample.migration,
    stage: sample.stage,
    route: sample.route,
    operation: sample.operation,
    key: toJson(sample.key, 0),
    diffs: sample.diffs.map((d) => ({ field: d.field, kind: d.kind, old: toJson(d.old, 0), new: toJson(d.new, 0) })),
    at: sample.at,
  };
}

/** Past this depth a raw value is cut off, which also ends cycles. */
const MAX_JSON_DEPTH = 32;

function toJson(value: unknown, depth: number): JsonValue {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'symbol':
      return value.toString();
    case 'function':
      return `[function ${value.name}]`;
  }
  if (value === null) return null;
  if (depth >= MAX_JSON_DEPTH) return '[too deep]';
  const object = value as object;
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
  const bytes = bytesOf(object);
  if (bytes !== undefined) return '\\x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  if (Array.isArray(object)) return object.map((v: unknown) => toJson(v, depth + 1));
  if (object instanceof Map) return [...object].map(([k, v]) => [toJson(k, depth + 1), toJson(v, depth + 1)]);
  if (object instanceof Set) return [...object].map((v) => toJson(v, depth + 1));
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(object)) {
    if (v !== undefined)
      Object.defineProperty(out, k, { value: toJson(v, depth + 1), enumerable: true, writable: true });
  }
  return out;
}
