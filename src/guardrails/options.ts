/**
 * The options of `createGuardrails`: thresholds (a default and per-migration overrides),
 * the callbacks, and their validation into fully resolved settings.
 */
import { z } from 'zod';
import { type OptionExpectations, parseOptions } from '../kernel/index.js';
import type { GuardrailTrip } from '../metrics/index.js';

/**
 * When a guardrail trips, per migration. Every rate and ratio is measured over the last
 * `windowMs` and counts only once its minimum sample is reached. `false` turns a check off.
 */
export interface GuardrailThresholds {
  /**
   * Highest share of comparisons that may mismatch (0 to 1). The guardrail trips when the
   * window's rate is above it: `0` trips on the first mismatch once `minComparisons` is reached.
   * @default 0.01
   */
  readonly maxMismatchRate?: number | false;
  /**
   * Comparisons the window must hold before the mismatch rate is judged.
   * @default 100
   */
  readonly minComparisons?: number;
  /**
   * Length of the sliding window, in ms. It advances in steps of a tenth of its length.
   * @default 60000
   */
  readonly windowMs?: number;
  /**
   * Highest share of reads that fetched the new side and failed there (0 to 1): new-side
   * errors of `get`, `getMany` and `find` per entity read with the new side fetched.
   * @default 0.01
   */
  readonly maxNewErrorRate?: number | false;
  /**
   * Entities read with the new side fetched that the window must hold before the new-side
   * error rate is judged.
   * @default 100
   */
  readonly minNewReads?: number;
  /**
   * Highest ratio of new-side to old-side latency (`latencyStatistic` of each). Compares
   * round trips that touched one side only (a statement that fetches both sides counts
   * as neither).
   * @default 3
   */
  readonly maxLatencyRatio?: number | false;
  /**
   * Latency measurements each side must have in the window before the ratio is judged.
   * @default 100
   */
  readonly minLatencySamples?: number;
  /**
   * Which latency is compared: the 99th percentile (from a log-scale histogram, within
   * about 5%) or the mean.
   * @default 'p99'
   */
  readonly latencyStatistic?: 'p99' | 'mean';
}

/** Thresholds with every default applied. */
export interface ResolvedThresholds {
  readonly maxMismatchRate: number | false;
  readonly minComparisons: number;
  readonly windowMs: number;
  readonly maxNewErrorRate: number | false;
  readonly minNewReads: number;
  readonly maxLatencyRatio: number | false;
  readonly minLatencySamples: number;
  readonly latencyStatistic: 'p99' | 'mean';
}

/** Options of `createGuardrails`. */
export interface GuardrailsOptions {
  /**
   * Thresholds of every migration, where `migrations` doesn't say otherwise.
   * @default {} (every default of {@link GuardrailThresholds})
   */
  readonly thresholds?: GuardrailThresholds;
  /**
   * Per-migration thresholds, by migration name, each merged over `thresholds`.
   * @default {}
   */
  readonly migrations?: Readonly<Record<string, GuardrailThresholds>>;
  /**
   * Called once when a migration's guardrail trips, after reads were held on the old side.
   * It runs inside the `record` call of the event that crossed the threshold, so keep it
   * short; what it throws is ignored.
   * @default none
   */
  readonly onTrip?: (trip: GuardrailTrip) => void;
  /**
   * Called once per trip, with the trip, to set the migration's stage flag to a stage that
   * reads old, so every process follows (e.g. `killMigration` of `flagshift/postgres-flags`).
   * Its failure is reported in `status()`; reads in this process stay held either way.
   * @default none (only this process holds its reads)
   */
  readonly setSafeStage?: (migration: string, trip: GuardrailTrip) => Promise<void>;
  /**
   * The clock, in ms. Tests pass a fake one.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** The defaults of {@link GuardrailThresholds}. */
export const DEFAULT_THRESHOLDS: ResolvedThresholds = Object.freeze({
  maxMismatchRate: 0.01,
  minComparisons: 100,
  windowMs: 60_000,
  maxNewErrorRate: 0.01,
  minNewReads: 100,
  maxLatencyRatio: 3,
  minLatencySamples: 100,
  latencyStatistic: 'p99',
});

const MAX_WINDOW_MS = 24 * 60 * 60 * 1000;

const rate = z.union([z.number().min(0).max(1), z.literal(false)]);
const count = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const thresholdsSchema = z.strictObject({
  maxMismatchRate: rate.optional(),
  minComparisons: count.optional(),
  windowMs: z.int().min(10).max(MAX_WINDOW_MS).optional(),
  maxNewErrorRate: rate.optional(),
  minNewReads: count.optional(),
  maxLatencyRatio: z.union([z.number().gt(0).max(1_000_000), z.literal(false)]).optional(),
  minLatencySamples: count.optional(),
  latencyStatistic: z.enum(['p99', 'mean']).optional(),
});

const fn = (name: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', name);
const optionsSchema = z.strictObject({
  thresholds: thresholdsSchema.optional(),
  migrations: z.record(z.string(), thresholdsSchema).optional(),
  onTrip: fn('onTrip').optional(),
  setSafeStage: fn('setSafeStage').optional(),
  now: fn('now').optional(),
});

/** By option name, which a threshold shares under `thresholds` and under each migration. */
const expected: OptionExpectations = {
  maxMismatchRate: 'a number from 0 to 1, or false',
  maxNewErrorRate: 'a number from 0 to 1, or false',
  minComparisons: 'a positive integer',
  minNewReads: 'a positive integer',
  minLatencySamples: 'a positive integer',
  windowMs: `an integer from 10 to ${MAX_WINDOW_MS}`,
  maxLatencyRatio: 'a positive number, or false',
  latencyStatistic: '"p99" or "mean"',
  onTrip: 'a function',
  setSafeStage: 'a function',
  now: 'a function',
  thresholds: 'an object',
  migrations: 'an object of thresholds by migration name',
};

/** Guardrail options, validated, with the thresholds resolved lazily per migration. */
export interface ValidGuardrailsOptions {
  thresholdsOf(migration: string): ResolvedThresholds;
  readonly onTrip: ((trip: GuardrailTrip) => void) | undefined;
  readonly setSafeStage: ((migration: string, trip: GuardrailTrip) => Promise<void>) | undefined;
  readonly now: () => number;
}

/** Validates `options` once, eagerly. */
export function validateGuardrailsOptions(options: unknown): ValidGuardrailsOptions {
  parseOptions('guardrails', optionsSchema, options, { ...expected, ...migrationEntries(options) });
  const valid = options as GuardrailsOptions;
  const base: ResolvedThresholds = { ...DEFAULT_THRESHOLDS, ...stripUndefined(valid.thresholds ?? {}) };
  const perMigration = new Map<string, ResolvedThresholds>();
  for (const [name, thresholds] of Object.entries(valid.migrations ?? {})) {
    perMigration.set(name, Object.freeze({ ...base, ...stripUndefined(thresholds) }));
  }
  const frozenBase = Object.freeze(base);
  return {
    thresholdsOf: (migration) => perMigration.get(migration) ?? frozenBase,
    onTrip: valid.onTrip,
    setSafeStage: valid.setSafeStage,
    now: valid.now ?? Date.now,
  };
}

function stripUndefined(thresholds: GuardrailThresholds): Partial<ResolvedThresholds> {
  return Object.fromEntries(Object.entries(thresholds).filter(([, value]) => value !== undefined));
}

/**
 * `migrations.<name>` must be an object, whatever the name: by full path, so that a
 * migration named like an option (`now`) is not held to that option's expectation.
 */
function migrationEntries(options: unknown): OptionExpectations {
  const migrations = isObject(options) ? options['migrations'] : undefined;
  if (!isObject(migrations)) return {};
  return Object.fromEntries(Object.keys(migrations).map((name) => [`migrations.${name}`, 'an object']));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
