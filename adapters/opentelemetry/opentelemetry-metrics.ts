import { z } from 'zod';
import { ConfigurationError, type MetricsSink, type Stage } from '../../src/index.js';
import {
  type BackfillProgressValue,
  createSeriesSink,
  type GuardrailsLike,
  guardrailsOption,
  parseOptions,
  type Series,
  type SeriesBackend,
  seriesNames,
  wholeOption,
} from '../../src/internal.js';
import { openTelemetryApi } from './peer.js';

/** The attributes flagshift records with a value: bounded labels, every value a string. */
export type AttributesLike = Readonly<Record<string, string>>;

/** The options flagshift gives when it creates an instrument. */
export interface InstrumentOptionsLike {
  /** The unit, e.g. `s` or `{read}`. */
  readonly unit?: string;
  /** What the instrument measures. */
  readonly description?: string;
  /** The histogram's bucket boundaries, as advice to the SDK. */
  readonly advice?: { readonly explicitBucketBoundaries?: number[] };
}

/** The part of an OpenTelemetry `Counter` the sink uses. */
export interface CounterLike {
  /** Adds `value` to the series of `attributes`. */
  add(value: number, attributes?: AttributesLike): void;
}

/** The part of an OpenTelemetry `Histogram` the sink uses. */
export interface HistogramLike {
  /** Records one sample in the series of `attributes`. */
  record(value: number, attributes?: AttributesLike): void;
}

/** The part of an OpenTelemetry `ObservableResult` the sink uses. */
export interface ObservableResultLike {
  /** Reports `value` for the series of `attributes`. */
  observe(value: number, attributes?: AttributesLike): void;
}

/** The part of an OpenTelemetry `ObservableGauge` the sink uses. */
export interface ObservableGaugeLike {
  /** Calls `callback` at every collection. */
  addCallback(callback: (result: ObservableResultLike) => void): void;
  /** Stops calling `callback`. */
  removeCallback(callback: (result: ObservableResultLike) => void): void;
}

/**
 * The part of an `@opentelemetry/api` `Meter` the sink uses; a real `Meter` is one.
 * Declared here so that flagshift's types hold in a project without `@opentelemetry/api`.
 */
export interface MeterLike {
  /** Creates a counter. */
  createCounter(name: string, options?: InstrumentOptionsLike): CounterLike;
  /** Creates a histogram. */
  createHistogram(name: string, options?: InstrumentOptionsLike): HistogramLike;
  /** Creates an observable gauge. */
  createObservableGauge(name: string, options?: InstrumentOptionsLike): ObservableGaugeLike;
}

/** The part of an `@opentelemetry/api` `MeterProvider` the sink uses. */
export interface MeterProviderLike {
  /** The meter named `name`. */
  getMeter(name: string): MeterLike;
}

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

/** Instrument names (without prefix) {@link createOpenTelemetryMetrics} creates, read off the series table. */
export const OPENTELEMETRY_INSTRUMENT_NAMES = seriesNames('opentelemetry');

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
  migrations: wholeOption(z.array(z.object({ name: z.string(), stageFlagKey: z.string().min(1) }))).optional(),
  providerName: z.string().min(1).max(200).optional(),
  guardrails: guardrailsOption.optional(),
});

const expected = {
  meter: 'an OpenTelemetry Meter',
  meterProvider: 'an OpenTelemetry MeterProvider',
  prefix: 'an instrument name prefix (a letter, then letters, digits, "_", ".", "/" or "-")',
  migrations: 'an array of migrations (with name and stageFlagKey)',
  providerName: 'a non-empty string of at most 200 characters',
  guardrails: 'guardrails from createGuardrails() (with subscribe and status)',
};

function validate(options: unknown): z.infer<typeof optionsSchema> {
  const parsed = parseOptions('opentelemetry metrics', optionsSchema, options, expected);
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
  const meter: MeterLike =
    valid.meter ?? (valid.meterProvider ?? openTelemetryApi.metrics.getMeterProvider()).getMeter('flagshift');
  const prefix = valid.prefix ?? 'flagshift.';
  const cleanups: (() => void)[] = [];
  const optionsOf = (series: Series) => ({ unit: series.opentelemetry.unit, description: series.help });

  /** An observable gauge whose callback `observe` fills; what `observe` throws fails only this gauge. */
  function gauge(series: Series, observe: (result: ObservableResultLike) => void): void {
    const instrument = meter.createObservableGauge(prefix + series.opentelemetry.name, optionsOf(series));
    const callback = (result: ObservableResultLike) => {
      try {
        observe(result);
      } catch {
        // A failing source must not fail the collection of every other instrument.
      }
    };
    instrument.addCallback(callback);
    cleanups.push(() => instrument.removeCallback(callback));
  }

  const backend: SeriesBackend = {
    name: 'opentelemetry',
    instrument(series) {
      const name = prefix + series.opentelemetry.name;
      switch (series.kind) {
        case 'counter': {
          const counter = meter.createCounter(name, optionsOf(series));
          return { record: (value, attributes) => counter.add(value, attributes) };
        }
        case 'histogram': {
          const buckets = series.opentelemetry.buckets;
          const histogram = meter.createHistogram(name, {
            ...optionsOf(series),
            ...(buckets === undefined ? {} : { advice: { explicitBucketBoundaries: [...buckets] } }),
          });
          return { record: (value, attributes) => histogram.record(value, attributes) };
        }
        case 'gauge': {
          // Observed at collection: the last value set for each set of attributes.
          const values = new Map<string, readonly [AttributesLike, number]>();
          gauge(series, (result) => {
            for (const [attributes, value] of values.values()) result.observe(value, attributes);
          });
          return {
            record(value, attributes) {
              values.set(JSON.stringify(attributes), [attributes, value]);
            },
          };
        }
      }
    },
    collected(series, pull) {
      if (pull === undefined) return;
      gauge(series, (result) => pull((value, attributes) => result.observe(value, attributes)));
    },
    close() {
      for (const cleanup of cleanups.splice(0)) cleanup();
    },
  };
  return createSeriesSink(backend, {
    guardrails: valid.guardrails,
    context: {
      stageFlagKeys: new Map((valid.migrations ?? []).map((m) => [m.name, m.stageFlagKey])),
      providerName: valid.providerName,
    },
  });
}
