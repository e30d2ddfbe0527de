/**
 * What the metrics exporters (`flagshift/prometheus`, `flagshift/opentelemetry`) take in
 * besides events: the guardrails they watch, and the checks on the gauge values an
 * operator sets (read percentage, backfill progress, stage), with the same messages in
 * both.
 */
import { z } from 'zod';
import { describeValue, ValidationError } from '../kernel/index.js';
import { isStage, STAGES, type Stage } from '../model/index.js';
import type { GuardrailEvent } from './guardrail-events.js';
import { migrationLabel, OTHER } from './labels.js';

/**
 * The part of flagshift's guardrails an exporter watches: trips and resets as they
 * happen, and which migrations are tripped at each collection.
 */
export interface GuardrailsLike {
  /** Calls `listener` on every trip and reset; returns the function that stops it. */
  subscribe(listener: (event: GuardrailEvent) => void): () => void;
  /** Which migrations are tripped now. */
  status(): readonly { readonly migration: string; readonly tripped: boolean }[];
}

/** The `guardrails` option of an exporter: anything with `subscribe` and `status`. */
export const guardrailsOption = z.custom<GuardrailsLike>(
  (value) =>
    typeof (value as Partial<GuardrailsLike> | null)?.subscribe === 'function' &&
    typeof (value as Partial<GuardrailsLike>).status === 'function',
);

/** Backfill progress: a ratio from 0 to 1, or rows done out of a total. */
export type BackfillProgressValue = number | { readonly done: number; readonly total: number };

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

/**
 * `schema` checked as one option: a value it refuses is reported at the option
 * (`latencyBuckets`), not at the element inside (`latencyBuckets.0`), so that the option's
 * expectation names what it must be. The value passes through unchanged.
 */
export function wholeOption<S extends z.ZodType>(schema: S): z.ZodType<z.output<S>> {
  return z.custom<z.output<S>>((value) => schema.safeParse(value).success);
}
