import { type Attributes, type Meter, type MeterProvider, metrics, type ObservableResult } from '@opentelemetry/api';
import { z } from 'zod';
import { ConfigurationError, type MetricEvent, type MetricsSink, STAGES, type Stage } from '../../src/index.js';
import {
  type BackfillProgressValue,
  errorCodeLabel,
  fallbackReasonLabel,
  fallbackSourceLabel,
  flagKeyLabel,
  type GuardrailsLike,
  gaugeMigration,
  gaugePercent,
  gaugeStage,
  guardrailReasonLabel,
  guardrailsOption,
  migrationLabel,
  OTHER,
  operationLabel,
  parseExporterOptions,
  progressRatio,
  sideLabel,
  sidesLabel,
  stageLabel,
} from '../../src/internal.js';

/** The part of an `@opentelemetry/api` `Meter` the sink uses. */
export type MeterLike = Pick<Meter, 'createCounter' | 'createHistogram' | 'createObservableGauge'>;

/** The part of an `@opentelemetry/api` `MeterProvider` the sink uses. */
export type MeterProviderLike = Pick<MeterProvider, 'getMeter'>;

/** What the sink needs of a migration to name its stage flag: `defineMigration`'s result fits. */
export interface MigrationFlagKeyLike {
  readonly name: string;
  readonly stageFlagKey: string;
}

/** Options of {@link createOpenTelemetryMetrics}. */
export interface OpenTelemetryMetricsOptions {
  /**
   * The meter to record with. Give this or `meterProvider`.
   * @default meterProvider.getMeter('flagshift')
   */
  readonly meter?: MeterLike;
  /**
   * The provider to get the `flagshift` meter from, when no `meter` is given.
   * @default the global provider (`metrics.getMeterProvider()` of `@opentelemetry/api`)
   */
  readonly meterProvider?: MeterProviderLike;
  /**
   * Prefix of every instrument name.
   * @default 'flagshift.'
   */
  readonly prefix?: string;
  /**
   * Migrations whose stage flag key is not the default (`flagshift.<name>.stage`), for the
   * `feature_flag.key` attribute. Pass the migrations themselves.
   * @default [] (every migration uses the default key)
   */
  readonly migrations?: readonly MigrationFlagKeyLike[];
  /**
   * `feature_flag.provider.name`: the flag provider routing the migrations, e.g. `flagd`.
   * @default none (the attribute is left out)
   */
  readonly providerName?: string;
  /**
   * Guardrails (from `createGuardrails`) to export: `guardrail.trips` counts trips,
   * `guardrail.tripped` is 1 while a migration's reads are held on the old side.
   * @default none
   */
  readonly guardrails?: GuardrailsLike;
}

/** A metrics sink recording with an OpenTelemetry meter, and setters for gauges the events don't carry. */
export interface OpenTelemetryMetrics extends MetricsSink {
  /** Sets the `read.percent` gauge of the migration (0 to 100). */
  setReadPercent(migration: string, percent: number): void;
  /** Sets the `backfill.progress` gauge of the migration (0 to 1; `1` when `total` is 0). */
  setBackfillProgress(migration: string, progress: BackfillProgressValue): void;
  /** Sets the `stage` gauge: 1 for `stage`, 0 for the other five. */
  setStage(migration: string, stage: Stage): void;
  /** Stops the gauges' callbacks and the guardrails subscription. */
  close(): void;
}

/** Instrument names (without prefix) {@link createOpenTelemetryMetrics} creates. */
export const OPENTELEMETRY_INSTRUMENT_NAMES = Object.freeze([
  'reads',
  'writes',
  'comparisons',
  'mismatches',
  'errors',
  'flag.fallbacks',
  'latency',
  'guardrail.trips',
  'guardrail.tripped',
  'read.percent',
  'backfill.progress',
  'stage',
] as const);

/** Latency histogram bucket bounds, in ms: database round trips, from sub-millisecond up. */
const LATENCY_BOUNDARIES_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

const hasFunction = (value: unknown, name: string) =>
  typeof (value as Record<string, unknown> | null)?.[name] === 'function';

const optionsSchema = z.strictObject({
  meter: z
    .custom<MeterLike>(
      (v) =>
        hasFunction(v, 'createCounter') && hasFunction(v, 'createHistogram') && hasFunction(v, 'createObservableGauge'),
    )
    .optional(),
  meterProvider: z.custom<MeterProviderLike>((v) => hasFunction(v, 'getMeter')).optional(),
  prefix: z
    .string()
    .regex(/^([A-Za-z][A-Za-z0-9_./-]{0,200})?$/)
    .optional(),
  migrations: z.array(z.object({ name: z.string(), stageFlagKey: z.string().min(1) })).optional(),
  providerName: z.string().min(1).max(200).optional(),
  guardrails: guardrailsOption.optional(),
});

const expected: Record<string, string> = {
  meter: 'an OpenTelemetry Meter',
  meterProvider: 'an OpenTelemetry MeterProvider',
  prefix: 'an instrument name prefix (a letter, then letters, digits, "_", ".", "/" or "-")',
  migrations: 'an array of migrations (with name and stageFlagKey)',
  providerName: 'a non-empty string of at most 200 characters',
  guardrails: 'guardrails from createGuardrails() (with subscribe and status)',
};

function validate(options: unknown): z.infer<typeof optionsSchema> {
  const parsed = parseExporterOptions('opentelemetry metrics', optionsSchema, expected, options);
  if (parsed.meter !== undefined && parsed.meterProvider !== undefined) {
    throw new ConfigurationError(
      'opentelemetry metrics options "meter" and "meterProvider" exclude each other, got both',
      {
        path: 'meterProvider',
      },
    );
  }
  return parsed;
}

/**
 * Records flagshift's metric events with an OpenTelemetry meter (`@opentelemetry/api`, an
 * optional peer dependency): counters of reads by served side, writes, comparisons,
 * mismatches, errors by side and flag fallbacks, and a latency histogram per side in ms.
 *
 * Attributes follow OpenTelemetry's feature-flag conventions where they apply:
 * `feature_flag.key` is the migration's stage flag, `feature_flag.result.variant` the stage
 * the entity was routed by (`live` outside the read percentage counts as `shadow`), and
 * `feature_flag.provider.name` the `providerName` option. flagshift's own are
 * `flagshift.migration`, `flagshift.stage`, `flagshift.side`, `flagshift.operation`,
 * `flagshift.comparison.result`, `flagshift.fallback.reason`/`.source`, and `error.type`
 * (the SQLSTATE or flagshift code) on errors. All are bounded: never entity keys or values;
 * a value outside its attribute's known set is recorded as `other`.
 *
 * | instrument (default prefix) | kind | unit |
 * |---|---|---|
 * | `flagshift.reads` | counter | `{operation}` |
 * | `flagshift.writes` | counter | `{operation}` |
 * | `flagshift.comparisons` | counter | `{comparison}` |
 * | `flagshift.mismatches` | counter | `{mismatch}` |
 * | `flagshift.errors` | counter | `{error}` |
 * | `flagshift.flag.fallbacks` | counter | `{evaluation}` |
 * | `flagshift.latency` | histogram | `ms` |
 * | `flagshift.guardrail.trips` | counter | `{trip}` |
 * | `flagshift.guardrail.tripped` | gauge | `1` |
 * | `flagshift.read.percent` | gauge | `%` |
 * | `flagshift.backfill.progress` | gauge | `1` |
 * | `flagshift.stage` | gauge | `1` |
 *
 * @param options - See {@link OpenTelemetryMetricsOptions}. @default {}
 * @throws {ConfigurationError} when an option is invalid.
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { createOpenTelemetryMetrics } from 'flagshift/opentelemetry';
 *
 * const otel = createOpenTelemetryMetrics({ meter: metrics.getMeter('my-service'), providerName: 'flagd' });
 * // createRepository(migration, { driver, flags, metrics: otel });
 * ```
 */
export function createOpenTelemetryMetrics(options: OpenTelemetryMetricsOptions = {}): OpenTelemetryMetrics {
  const valid = validate(options);
  const meter: MeterLike = valid.meter ?? (valid.meterProvider ?? metrics.getMeterProvider()).getMeter('flagshift');
  const prefix = valid.prefix ?? 'flagshift.';
  const flagKeys = new Map((valid.migrations ?? []).map((m) => [m.name, m.stageFlagKey]));
  const providerName = valid.providerName;

  const counter = (name: string, unit: string, description: string) =>
    meter.createCounter(prefix + name, { unit, description });
  const reads = counter('reads', '{operation}', 'Read operations, by the side whose value the caller got.');
  const writes = counter('writes', '{operation}', 'Acknowledged write operations, by the sides written.');
  const comparisons = counter('comparisons', '{comparison}', 'Old/new comparisons of an entity or a result set.');
  const mismatches = counter('mismatches', '{mismatch}', 'Comparisons whose old and new values differed.');
  const errors = counter('errors', '{error}', 'Failed statements or sides, by SQLSTATE or flagshift error code.');
  const fallbacks = counter('flag.fallbacks', '{evaluation}', 'Flag evaluations that fell back to a stored decision.');
  const trips = counter('guardrail.trips', '{trip}', 'Guardrail trips, by the threshold crossed.');
  const latency = meter.createHistogram(`${prefix}latency`, {
    unit: 'ms',
    description: 'Database round trips of flagshift operations, by the sides they touched.',
    advice: { explicitBucketBoundaries: LATENCY_BOUNDARIES_MS },
  });

  const readPercents = new Map<string, number>();
  const progress = new Map<string, number>();
  const stages = new Map<string, Stage>();
  const cleanups: (() => void)[] = [];
  const gauge = (name: string, unit: string, description: string, observe: (result: ObservableResult) => void) => {
    const instrument = meter.createObservableGauge(prefix + name, { unit, description });
    const callback = (result: ObservableResult) => {
      try {
        observe(result);
      } catch {
        // A failing source must not fail the collection of every other instrument.
      }
    };
    instrument.addCallback(callback);
    cleanups.push(() => instrument.removeCallback(callback));
  };
  gauge('read.percent', '%', 'Read-percentage flag of a migration (0 to 100), as last set.', (result) => {
    for (const [migration, value] of readPercents) result.observe(value, { 'flagshift.migration': migration });
  });
  gauge('backfill.progress', '1', 'Share of the table the backfill has done (0 to 1).', (result) => {
    for (const [migration, value] of progress) result.observe(value, { 'flagshift.migration': migration });
  });
  gauge('stage', '1', 'Stage of a migration, as last set: 1 for the current stage, 0 for the others.', (result) => {
    for (const [migration, current] of stages) {
      for (const stage of STAGES) {
        result.observe(stage === current ? 1 : 0, { 'flagshift.migration': migration, 'flagshift.stage': stage });
      }
    }
  });

  const guardrails = valid.guardrails;
  if (guardrails !== undefined) {
    gauge(
      'guardrail.tripped',
      '1',
      'Whether a migration is held on the old side by a tripped guardrail (1) or not (0).',
      (result) => {
        for (const status of guardrails.status()) {
          result.observe(status.tripped ? 1 : 0, { 'flagshift.migration': migrationLabel(status.migration) });
        }
      },
    );
    cleanups.push(
      guardrails.subscribe((event) => {
        if (event.type !== 'trip') return;
        trips.add(1, {
          'flagshift.migration': migrationLabel(event.trip.migration),
          'flagshift.guardrail.reason': guardrailReasonLabel(event.trip.reason),
        });
      }),
    );
  }

  /** Attributes of an event routed by a stage: the flag conventions and flagshift's own. */
  function staged(migration: string, stage: unknown): Attributes {
    const stageName = stageLabel(stage);
    const attributes: Attributes = {
      'feature_flag.key': migration === OTHER ? OTHER : (flagKeys.get(migration) ?? `flagshift.${migration}.stage`),
      'feature_flag.result.variant': stageName,
      'flagshift.migration': migration,
      'flagshift.stage': stageName,
    };
    if (providerName !== undefined) attributes['feature_flag.provider.name'] = providerName;
    return attributes;
  }

  function record(event: MetricEvent): void {
    const migration = migrationLabel(event.migration);
    switch (event.type) {
      case 'read':
        reads.add(1, {
          ...staged(migration, event.stage),
          'flagshift.side': sideLabel(event.served),
          'flagshift.operation': operationLabel(event.operation),
        });
        return;
      case 'write':
        writes.add(1, {
          ...staged(migration, event.stage),
          'flagshift.side': sidesLabel(event.sides),
          'flagshift.operation': operationLabel(event.operation),
        });
        return;
      case 'comparison':
        comparisons.add(1, {
          ...staged(migration, event.stage),
          'flagshift.comparison.result': event.matched ? 'matched' : 'mismatched',
        });
        return;
      case 'mismatch':
        mismatches.add(1, staged(migration, event.stage));
        return;
      case 'error':
        errors.add(1, {
          ...staged(migration, event.stage),
          'flagshift.side': sideLabel(event.side),
          'flagshift.operation': operationLabel(event.operation),
          'error.type': errorCodeLabel(event.code),
        });
        return;
      case 'latency':
        if (!Number.isFinite(event.milliseconds) || event.milliseconds < 0) return;
        latency.record(event.milliseconds, {
          'flagshift.migration': migration,
          'flagshift.side': sideLabel(event.side, true),
          'flagshift.operation': operationLabel(event.operation),
        });
        return;
      case 'flag-fallback': {
        const attributes: Attributes = {
          'feature_flag.key': flagKeyLabel(event.flagKey),
          'flagshift.migration': migration,
          'flagshift.fallback.reason': fallbackReasonLabel(event.reason),
          'flagshift.fallback.source': fallbackSourceLabel(event.source),
        };
        if (providerName !== undefined) attributes['feature_flag.provider.name'] = providerName;
        fallbacks.add(1, attributes);
        return;
      }
    }
  }

  return {
    record(event: MetricEvent): void {
      try {
        record(event);
      } catch {
        // A sink must never throw into the data path; a malformed event is dropped.
      }
    },
    setReadPercent(migration: string, percent: number): void {
      const name = gaugeMigration(migration);
      readPercents.set(name, gaugePercent(name, percent));
    },
    setBackfillProgress(migration: string, value: BackfillProgressValue): void {
      const name = gaugeMigration(migration);
      progress.set(name, progressRatio(name, value));
    },
    setStage(migration: string, stage: Stage): void {
      const name = gaugeMigration(migration);
      stages.set(name, gaugeStage(name, stage));
    },
    close(): void {
      for (const cleanup of cleanups.splice(0)) cleanup();
    },
  };
}
