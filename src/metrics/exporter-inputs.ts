/**
 * What the metrics exporters (`flagshift/prometheus`, `flagshift/opentelemetry`) share
 * beyond label values: the guardrails they watch, and the checks on the gauge values an
 * operator sets (read percentage, backfill progress, stage), with the same messages in
 * both.
 */
import { z } from 'zod';
import { ConfigurationError, ValidationError } from '../kernel/index.js';
import { isStage, STAGES, type Stage } from '../model/index.js';
import type { GuardrailEvent } from './guardrail-events.js';
import { migrationLabel, OTHER } from './labels.js';

/**
 * The part of flagshift's guardrails an exporter watches: trips and resets as they
 * happen, and which migrations are tripped at each collection.
 */
export interface GuardrailsLike {
  subscribe(listener: (event: GuardrailEvent) => void): () => void;
  status(): readonly { readonly migration: string; readonly tripped: boolean }[];
}

/** The `guardrails` option of an exporter: anything with `subscribe` and `status`. */
export const guardrailsOption = z.custom<GuardrailsLike>(
  (value) =>
    typeof (value as Partial<GuardrailsLike> | null)?.subscribe === 'function' &&
    typeof (value as Partial<GuardrailsLike>).status === 'function',
);

/**
 * An exporter's options, checked against `schema` (a strict object). Throws a
 * {@link ConfigurationError} naming the first unknown option, or the first bad one with
 * what it must be (`expected`, by option) and the value it got. `label` begins each message
 * (`prometheus metrics`).
 */
export function parseExporterOptions<S extends z.ZodType>(
  label: string,
  schema: S,
  expected: Readonly<Record<string, string>>,
  options: unknown,
): z.infer<S> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigurationError(`${label} options must be an object, got ${describeValue(options)}`);
  }
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    throw new ConfigurationError(`${label} option "${key}" is not a known option`, { path: key });
  }
  const name = String(issue.path[0] ?? '');
  throw new ConfigurationError(
    `${label} option "${name}" must be ${expected[name] ?? 'valid'}, got ${describeValue((options as Record<string, unknown>)[name])}`,
    { path: name, cause: result.error },
  );
}

/** Backfill progress: a ratio from 0 to 1, or rows done out of a total. */
export type BackfillProgressValue = number | { readonly done: number; readonly total: number };

/** A value for an error message: strings quoted, arrays listed, objects and functions named. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `[${value.map(describeValue).join(', ')}]` : 'an object';
}

/** The migration name as a label value; throws a {@link ValidationError} for one `defineMigration` would refuse. */
export function gaugeMigration(migration: string): string {
  const label = migrationLabel(migration);
  if (label === OTHER && migration !== OTHER) {
    throw new ValidationError(`migration name ${describeValue(migration)} is not a valid migration name`, {
      fields: ['migration'],
    });
  }
  return label;
}

/** `percent`, checked to be a number from 0 to 100. */
export function gaugePercent(migration: string, percent: number): number {
  if (typeof percent !== 'number' || !(percent >= 0 && percent <= 100)) {
    throw new ValidationError(
      `read percent of migration "${migration}" must be a number from 0 to 100, got ${describeValue(percent)}`,
      { fields: ['percent'] },
    );
  }
  return percent;
}

/** `stage`, checked to be one of the six. */
export function gaugeStage(migration: string, stage: Stage): Stage {
  if (!isStage(stage)) {
    throw new ValidationError(
      `stage of migration "${migration}" must be one of ${STAGES.join(', ')}, got ${describeValue(stage)}`,
      { fields: ['stage'] },
    );
  }
  return stage;
}

/** `progress` as a ratio from 0 to 1; throws on what can't be one. */
export function progressRatio(migration: string, progress: BackfillProgressValue): number {
  if (typeof progress === 'number') {
    if (progress >= 0 && progress <= 1) return progress;
  } else if (progress !== null && typeof progress === 'object') {
    const { done, total } = progress;
    if (Number.isFinite(done) && Number.isFinite(total) && done >= 0 && total >= 0) {
      return total === 0 ? 1 : Math.min(1, done / total);
    }
  }
  throw new ValidationError(
    `backfill progress of migration "${migration}" must be a ratio from 0 to 1 or { done, total } with non-negative numbers, got ${describeValue(progress)}`,
    { fields: ['progress'] },
  );
}
