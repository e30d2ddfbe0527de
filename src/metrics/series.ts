/**
 * The one table of metric series and labels that every metrics backend reads: for each
 * series its kind, help text, name and label names in Prometheus and in OpenTelemetry,
 * and how its input (a metric event, a guardrail trip or status, a gauge an operator
 * sets) becomes samples. The exporters make their instruments from these rows and record
 * an input by looking up the rows it feeds (`createSeriesSink`); their lists of names are
 * read off the table.
 *
 * Adding a metric event touches:
 * 1. `events.ts`: its interface, its place in `MetricEvent` and in `METRIC_EVENT_TYPES`;
 * 2. `SERIES` below: its row or rows (`source` is the event's type), with labels from
 *    `LABELS` (add one there if it needs a new one, see below);
 * 3. a handler in `memory-metrics.ts` only if the in-memory snapshot is to show it (the
 *    snapshot's shape is its own), and in `guardrails.ts` only if a threshold judges it.
 *
 * Adding a label touches:
 * 1. `LABELS` below: its name in each backend (leave a backend out to keep the label
 *    from it) and its value, bounded by a function of `labels.ts` so that a malformed
 *    event can't open a series;
 * 2. the `labels` lists of the rows that carry it, per backend;
 * 3. the event's field in `events.ts`, when the label reads something no event carries yet.
 * The `route` label (the stage an operation behaved as, apart from the flag's `stage`)
 * was added so: one entry here, the rows' lists, and the events' `route` field.
 */

import { STAGES, type Stage } from '../model/index.js';
import type { MetricEvent } from './events.js';
import type { GuardrailTrip } from './guardrail-events.js';
import {
  errorCodeLabel,
  fallbackReasonLabel,
  fallbackSourceLabel,
  flagKeyLabel,
  guardrailReasonLabel,
  migrationLabel,
  OTHER,
  operationLabel,
  sideLabel,
  sidesLabel,
  stageLabel,
} from './labels.js';

/** A metrics backend the table names series and labels for. */
export type SeriesBackendName = 'prometheus' | 'opentelemetry';

/** What feeds series besides metric events. */
export interface SeriesInputs {
  /** A guardrail tripped. */
  readonly 'guardrail-trip': GuardrailTrip;
  /** Whether a migration is tripped, read from the guardrails at each collection. */
  readonly 'guardrail-status': { readonly migration: string; readonly tripped: boolean };
  /** The read-percentage flag, as an operator set it (0 to 100). */
  readonly 'read-percent': { readonly migration: string; readonly percent: number };
  /** The backfill's progress, as an operator set it (0 to 1). */
  readonly 'backfill-progress': { readonly migration: string; readonly ratio: number };
  /** The migration's stage, as an operator set it. */
  readonly stage: { readonly migration: string; readonly stage: Stage };
}

type EventInputs = { readonly [E in MetricEvent as E['type']]: E };

/** What feeds a series: a metric event's type, or one of {@link SeriesInputs}. */
export type SeriesSource = keyof EventInputs | keyof SeriesInputs;

/** The input of `source`. */
export type SeriesInput<S extends SeriesSource> = (EventInputs & SeriesInputs)[S];

/** What label values may depend on besides the input: the exporter's configuration. */
export interface LabelContext {
  /** Stage flag keys that are not the default, by migration name. */
  readonly stageFlagKeys: ReadonlyMap<string, string>;
  /** The flag provider's name; the label is left out when `undefined`. */
  readonly providerName: string | undefined;
}

/** A label: its name in each backend that has it, and its value for an input. */
interface Label<I> {
  readonly prometheus?: string;
  readonly opentelemetry?: string;
  /** The bounded value; `undefined` leaves the label out of the sample. */
  readonly value: (input: I, context: LabelContext) => string | undefined;
}

/**
 * Every label, by the key rows list it under. Backends name them differently:
 * OpenTelemetry follows the feature-flag semantic conventions where they apply
 * (`feature_flag.*`, `error.type`) and puts the rest under `flagshift.`.
 */
export const LABELS = Object.freeze({
  migration: {
    prometheus: 'migration',
    opentelemetry: 'flagshift.migration',
    value: (input: { readonly migration: unknown }) => migrationLabel(input.migration),
  },
  /** The migration's stage flag, as the process evaluated it: what an operator set. */
  stage: {
    prometheus: 'stage',
    opentelemetry: 'flagshift.stage',
    value: (input: { readonly stage: unknown }) => stageLabel(input.stage),
  },
  /**
   * The stage the operation behaved as: `shadow` for an entity outside `live`'s read
   * percentage (or held back by a guardrail), else the flag's stage.
   */
  route: {
    prometheus: 'route',
    opentelemetry: 'flagshift.route',
    value: (input: { readonly route: unknown }) => stageLabel(input.route),
  },
  /** The feature-flag conventions' name for the flag's evaluated value: the stage. */
  variant: {
    opentelemetry: 'feature_flag.result.variant',
    value: (input: { readonly stage: unknown }) => stageLabel(input.stage),
  },
  /** The migration's stage flag: `defineMigration`'s default unless the exporter was told otherwise. */
  stageFlag: {
    opentelemetry: 'feature_flag.key',
    value: (input: { readonly migration: unknown }, context: LabelContext) => {
      const migration = migrationLabel(input.migration);
      return migration === OTHER ? OTHER : (context.stageFlagKeys.get(migration) ?? `flagshift.${migration}.stage`);
    },
  },
  provider: {
    opentelemetry: 'feature_flag.provider.name',
    value: (_input: unknown, context: LabelContext) => context.providerName,
  },
  /** The side whose value the caller got. */
  served: {
    prometheus: 'side',
    opentelemetry: 'flagshift.side',
    value: (input: { readonly served: unknown }) => sideLabel(input.served),
  },
  side: {
    prometheus: 'side',
    opentelemetry: 'flagshift.side',
    value: (input: { readonly side: unknown }) => sideLabel(input.side),
  },
  /** A latency's side, `both` for one statement that served old and new. */
  latencySide: {
    prometheus: 'side',
    opentelemetry: 'flagshift.side',
    value: (input: { readonly side: unknown }) => sideLabel(input.side, true),
  },
  /** The sides a write set: `old`, `new` or `both`. */
  sides: {
    prometheus: 'sides',
    opentelemetry: 'flagshift.side',
    value: (input: { readonly sides: unknown }) => sidesLabel(input.sides),
  },
  operation: {
    prometheus: 'operation',
    opentelemetry: 'flagshift.operation',
    value: (input: { readonly operation: unknown }) => operationLabel(input.operation),
  },
  result: {
    prometheus: 'result',
    opentelemetry: 'flagshift.comparison.result',
    value: (input: { readonly matched: unknown }) => (input.matched ? 'matched' : 'mismatched'),
  },
  /** SQLSTATE or flagshift error code. */
  code: {
    prometheus: 'code',
    opentelemetry: 'error.type',
    value: (input: { readonly code: unknown }) => errorCodeLabel(input.code),
  },
  fallbackReason: {
    prometheus: 'reason',
    opentelemetry: 'flagshift.fallback.reason',
    value: (input: { readonly reason: unknown }) => fallbackReasonLabel(input.reason),
  },
  fallbackSource: {
    prometheus: 'source',
    opentelemetry: 'flagshift.fallback.source',
    value: (input: { readonly source: unknown }) => fallbackSourceLabel(input.source),
  },
  /** The flag a fallback was for. */
  flagKey: {
    opentelemetry: 'feature_flag.key',
    value: (input: { readonly flagKey: unknown }) => flagKeyLabel(input.flagKey),
  },
  guardrailReason: {
    prometheus: 'reason',
    opentelemetry: 'flagshift.guardrail.reason',
    value: (input: { readonly reason: unknown }) => guardrailReasonLabel(input.reason),
  },
} satisfies Readonly<Record<string, Label<never>>>);

/** The key of a label in {@link LABELS}. */
export type LabelKey = keyof typeof LABELS;

/** The labels `backend` has that can be read off input `I`. */
type LabelOf<B extends SeriesBackendName, I> = {
  [K in LabelKey]: (typeof LABELS)[K] extends { readonly [P in B]: string }
    ? I extends Parameters<(typeof LABELS)[K]['value']>[0]
      ? K
      : never
    : never;
}[LabelKey];

/** A row of the table. `P` and `O` are its Prometheus and OpenTelemetry names. */
export interface SeriesRow<
  S extends SeriesSource = SeriesSource,
  P extends string = string,
  O extends string = string,
> {
  /** What feeds the series. */
  readonly source: S;
  readonly kind: 'counter' | 'histogram' | 'gauge';
  /** Prometheus' help and OpenTelemetry's description. */
  readonly help: string;
  readonly prometheus: {
    /** Without the exporter's prefix. */
    readonly name: P;
    readonly labels: readonly LabelOf<'prometheus', SeriesInput<S>>[];
    /** Histogram bucket bounds, in the exported unit. */
    readonly buckets?: readonly number[];
    /** What a value is divided by for Prometheus' base unit (milliseconds to seconds). */
    readonly divisor?: number;
  };
  readonly opentelemetry: {
    /** Without the exporter's prefix. */
    readonly name: O;
    readonly unit: string;
    readonly labels: readonly LabelOf<'opentelemetry', SeriesInput<S>>[];
    /** Histogram bucket bounds. */
    readonly buckets?: readonly number[];
  };
  /** The value one input records; `undefined` records nothing. @default 1 */
  value?(input: SeriesInput<S>): number | undefined;
  /** For a series one input records several samples of: each with what its labels are read off. */
  samples?(input: SeriesInput<S>): Iterable<readonly [SeriesInput<S>, number]>;
}

/** Any row of the table. */
export type Series = SeriesRow<SeriesSource>;

function series<S extends SeriesSource, P extends string, O extends string>(
  row: SeriesRow<S, P, O>,
): SeriesRow<S, P, O> {
  return Object.freeze(row);
}

/** The attributes OpenTelemetry's feature-flag conventions give an event routed by a stage. */
const ROUTED = ['stageFlag', 'variant', 'migration', 'stage', 'route', 'provider'] as const;

/** Every series, in the order the exporters list them. */
export const SERIES = Object.freeze([
  series({
    source: 'read',
    kind: 'counter',
    help: 'Read operations, by the side whose value the caller got.',
    prometheus: { name: 'reads_total', labels: ['migration', 'stage', 'route', 'served', 'operation'] },
    opentelemetry: { name: 'reads', unit: '{operation}', labels: [...ROUTED, 'served', 'operation'] },
  }),
  series({
    source: 'write',
    kind: 'counter',
    help: 'Acknowledged write operations, by the sides written.',
    prometheus: { name: 'writes_total', labels: ['migration', 'stage', 'route', 'sides', 'operation'] },
    opentelemetry: { name: 'writes', unit: '{operation}', labels: [...ROUTED, 'sides', 'operation'] },
  }),
  series({
    source: 'comparison',
    kind: 'counter',
    help: 'Old/new comparisons of an entity or a result set.',
    prometheus: { name: 'comparisons_total', labels: ['migration', 'stage', 'route', 'result'] },
    opentelemetry: { name: 'comparisons', unit: '{comparison}', labels: [...ROUTED, 'result'] },
  }),
  series({
    source: 'mismatch',
    kind: 'counter',
    help: 'Comparisons whose old and new values differed.',
    prometheus: { name: 'mismatches_total', labels: ['migration', 'stage', 'route'] },
    opentelemetry: { name: 'mismatches', unit: '{mismatch}', labels: ROUTED },
  }),
  series({
    source: 'error',
    kind: 'counter',
    help: 'Failed statements or sides, by SQLSTATE or flagshift error code.',
    prometheus: { name: 'errors_total', labels: ['migration', 'stage', 'route', 'side', 'code'] },
    opentelemetry: { name: 'errors', unit: '{error}', labels: [...ROUTED, 'side', 'operation', 'code'] },
  }),
  series({
    source: 'flag-fallback',
    kind: 'counter',
    help: 'Flag evaluations that fell back to a stored decision.',
    prometheus: { name: 'flag_fallbacks_total', labels: ['migration', 'fallbackReason', 'fallbackSource'] },
    opentelemetry: {
      name: 'flag.fallbacks',
      unit: '{evaluation}',
      labels: ['flagKey', 'migration', 'fallbackReason', 'fallbackSource', 'provider'],
    },
  }),
  series({
    source: 'latency',
    kind: 'histogram',
    help: 'Database round trips of flagshift operations, by the sides they touched.',
    prometheus: {
      name: 'latency_seconds',
      labels: ['migration', 'latencySide', 'operation'],
      // Database round trips, from sub-millisecond up.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      divisor: 1000,
    },
    opentelemetry: {
      name: 'latency',
      unit: 'ms',
      labels: ['migration', 'latencySide', 'operation'],
      buckets: [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
    },
    value: ({ milliseconds }) => (Number.isFinite(milliseconds) && milliseconds >= 0 ? milliseconds : undefined),
  }),
  series({
    source: 'guardrail-trip',
    kind: 'counter',
    help: 'Guardrail trips, by the threshold crossed.',
    prometheus: { name: 'guardrail_trips_total', labels: ['migration', 'guardrailReason'] },
    opentelemetry: { name: 'guardrail.trips', unit: '{trip}', labels: ['migration', 'guardrailReason'] },
  }),
  series({
    source: 'guardrail-status',
    kind: 'gauge',
    help: 'Whether a migration is held on the old side by a tripped guardrail (1) or not (0).',
    prometheus: { name: 'guardrail_tripped', labels: ['migration'] },
    opentelemetry: { name: 'guardrail.tripped', unit: '1', labels: ['migration'] },
    value: ({ tripped }) => (tripped ? 1 : 0),
  }),
  series({
    source: 'read-percent',
    kind: 'gauge',
    help: 'Read-percentage flag of a migration (0 to 100), as last set.',
    prometheus: { name: 'read_percent', labels: ['migration'] },
    opentelemetry: { name: 'read.percent', unit: '%', labels: ['migration'] },
    value: ({ percent }) => percent,
  }),
  series({
    source: 'backfill-progress',
    kind: 'gauge',
    help: 'Share of the table the backfill has done (0 to 1).',
    prometheus: { name: 'backfill_progress_ratio', labels: ['migration'] },
    opentelemetry: { name: 'backfill.progress', unit: '1', labels: ['migration'] },
    value: ({ ratio }) => ratio,
  }),
  series({
    source: 'stage',
    kind: 'gauge',
    help: 'Stage of a migration, as last set: 1 for the current stage, 0 for the others.',
    prometheus: { name: 'stage', labels: ['migration', 'stage'] },
    opentelemetry: { name: 'stage', unit: '1', labels: ['migration', 'stage'] },
    samples: ({ migration, stage: current }) =>
      STAGES.map((stage) => [{ migration, stage }, stage === current ? 1 : 0]),
  }),
] as const);

type NamesOf<T extends readonly Series[], B extends SeriesBackendName> = {
  readonly [K in keyof T]: T[K] extends { readonly [P in B]: { readonly name: infer N } } ? N : never;
};

/** The names (without prefix) of every series in `backend`, in table order. */
export function seriesNames<B extends SeriesBackendName>(backend: B): NamesOf<typeof SERIES, B> {
  return Object.freeze(SERIES.map((row) => row[backend].name)) as unknown as NamesOf<typeof SERIES, B>;
}

/** The label names of `row` in `backend`, in the row's order. */
export function labelNames(row: Series, backend: SeriesBackendName): string[] {
  return row[backend].labels.map((key) => (LABELS[key] as Label<never>)[backend]!);
}

/** The labels of one sample of `row` in `backend`, read off `input`. */
export function labelsOf(
  row: Series,
  backend: SeriesBackendName,
  input: SeriesInput<SeriesSource>,
  context: LabelContext,
): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const key of row[backend].labels) {
    const label = LABELS[key] as Label<SeriesInput<SeriesSource>>;
    const value = label.value(input, context);
    if (value !== undefined) labels[label[backend]!] = value;
  }
  return labels;
}

/** The samples one input records in `row`: what each one's labels are read off, and its value. */
export function samplesOf(
  row: Series,
  input: SeriesInput<SeriesSource>,
): Iterable<readonly [SeriesInput<SeriesSource>, number]> {
  if (row.samples !== undefined) return row.samples(input);
  const value = row.value === undefined ? 1 : row.value(input);
  return value === undefined ? [] : [[input, value]];
}
