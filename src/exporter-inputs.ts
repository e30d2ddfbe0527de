/**
 * What the metrics exporters (`flagshift/prometheus`, `flagshift/opentelemetry`) share
 * beyond label values: the guardrails they watch, and the checks on the gauge values an
 * operator sets (read percentage, backfill progress, stage), with the same messages in
 * both.
 */
import { ValidationError } from './errors.js';
import type { GuardrailEvent } from './guardrail-trip.js';
import { migrationLabel, OTHER } from './metric-labels.js';
import { isStage, STAGES, type Stage } from './stages.js';

/**
 * The part of flagshift's guardrails an exporter watches: trips and resets as they
 * happen, and which migrations are tripped at each collection.
 */
export interface GuardrailsLike {
  subscribe(listener: (event: GuardrailEvent) => void): () => void;
  status(): readonly { readonly migration: string; readonly tripped: boolean }[];
}

/** Backfill progress: a ratio from 0 to 1, or rows done out of a total. */
export type BackfillProgress = number | { readonly done: number; readonly total: number };

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
export function progressRatio(migration: string, progress: BackfillProgress): number {
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
