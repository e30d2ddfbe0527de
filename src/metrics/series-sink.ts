/**
 * What the exporters share: a metrics sink that keeps the series of the table in a
 * backend's instruments. It makes one instrument per row, records each input in the rows
 * that input feeds, checks the gauge values an operator sets, and watches the guardrails;
 * a backend only says how it makes and records an instrument.
 */
import type { Stage } from '../model/index.js';
import { isMetricEventType, type MetricEvent, type MetricsSink } from './events.js';
import {
  type BackfillProgressValue,
  type GuardrailsLike,
  gaugeMigration,
  gaugePercent,
  gaugeStage,
  progressRatio,
} from './exporter-inputs.js';
import {
  type LabelContext,
  labelsOf,
  SERIES,
  type Series,
  type SeriesBackendName,
  type SeriesInput,
  type SeriesSource,
  samplesOf,
} from './series.js';

/** One sample's labels, as the backend names them. */
export type SeriesLabels = Readonly<Record<string, string>>;

/** A backend's instrument of one series. */
export interface SeriesInstrument {
  record(value: number, labels: SeriesLabels): void;
}

/** Reads the samples of a series collected on demand, passing each to `observe`. */
export type SeriesPull = (observe: (value: number, labels: SeriesLabels) => void) => void;

/** How a metrics backend keeps the series of the table. */
export interface SeriesBackend {
  /** Which of the table's names the backend uses. */
  readonly name: SeriesBackendName;
  /** The instrument of `series`, which records samples as its inputs arrive. */
  instrument(series: Series): SeriesInstrument;
  /**
   * Makes the instrument of `series`, whose samples are read at each collection by `pull`
   * (which migrations the guardrails hold). `pull` is `undefined` without guardrails.
   */
  collected(series: Series, pull: SeriesPull | undefined): void;
  /** Stops what the backend started (collection callbacks). */
  close?(): void;
}

/** Options of {@link createSeriesSink}. */
export interface SeriesSinkOptions {
  /** Guardrails whose trips and status to export. @default none */
  readonly guardrails?: GuardrailsLike | undefined;
  /** What label values may depend on besides the input. @default no stage flag keys, no provider name */
  readonly context?: LabelContext;
}

/** A sink recording the table's series, and setters for the gauges no event carries. */
export interface SeriesSink extends MetricsSink {
  /** Feeds the `read-percent` series: the read-percentage flag's value, 0 to 100. */
  setReadPercent(migration: string, percent: number): void;
  /** Feeds the `backfill-progress` series, as a ratio from 0 to 1. */
  setBackfillProgress(migration: string, progress: BackfillProgressValue): void;
  /** Feeds the `stage` series: 1 for `stage`, 0 for the other five. */
  setStage(migration: string, stage: Stage): void;
  /** Stops watching the guardrails, and the backend's callbacks. */
  close(): void;
}

/** Sources read at each collection rather than recorded as they happen. */
const COLLECTED: ReadonlySet<SeriesSource> = new Set<SeriesSource>(['guardrail-status']);

const NO_CONTEXT: LabelContext = Object.freeze({ stageFlagKeys: new Map(), providerName: undefined });

/**
 * A sink that keeps every series of the table in `backend`'s instruments, made at once in
 * table order. `record` never throws; the setters throw a `ValidationError` for a value
 * the gauge can't show.
 */
export function createSeriesSink(backend: SeriesBackend, options: SeriesSinkOptions = {}): SeriesSink {
  const { guardrails } = options;
  const context = options.context ?? NO_CONTEXT;
  const instruments = new Map<SeriesSource, { readonly row: Series; readonly instrument: SeriesInstrument }[]>();

  for (const row of SERIES as readonly Series[]) {
    if (COLLECTED.has(row.source)) {
      backend.collected(row, guardrails === undefined ? undefined : pullStatus(row, guardrails));
      continue;
    }
    const fed = instruments.get(row.source) ?? [];
    fed.push({ row, instrument: backend.instrument(row) });
    instruments.set(row.source, fed);
  }

  function feed<S extends SeriesSource>(source: S, input: SeriesInput<S>): void {
    for (const { row, instrument } of instruments.get(source) ?? []) {
      for (const [labelled, value] of samplesOf(row, input)) {
        instrument.record(value, labelsOf(row, backend.name, labelled, context));
      }
    }
  }

  function pullStatus(row: Series, source: GuardrailsLike): SeriesPull {
    return (observe) => {
      try {
        for (const status of source.status()) {
          for (const [labelled, value] of samplesOf(row, status))
            observe(value, labelsOf(row, backend.name, labelled, context));
        }
      } catch {
        // A broken guardrails object must not fail the collection of every other series.
      }
    };
  }

  const unsubscribe = guardrails?.subscribe((event) => {
    if (event.type === 'trip') feed('guardrail-trip', event.trip);
  });

  return {
    record(event: MetricEvent): void {
      try {
        const type: unknown = event.type;
        if (isMetricEventType(type)) feed(type, event);
      } catch {
        // A sink must never throw into the data path; a malformed event is dropped.
      }
    },
    setReadPercent(migration: string, percent: number): void {
      const name = gaugeMigration(migration);
      feed('read-percent', { migration: name, percent: gaugePercent(name, percent) });
    },
    setBackfillProgress(migration: string, progress: BackfillProgressValue): void {
      const name = gaugeMigration(migration);
      feed('backfill-progress', { migration: name, ratio: progressRatio(name, progress) });
    },
    setStage(migration: string, stage: Stage): void {
      const name = gaugeMigration(migration);
      feed('stage', { migration: name, stage: gaugeStage(name, stage) });
    },
    close(): void {
      unsubscribe?.();
      backend.close?.();
    },
  };
}
