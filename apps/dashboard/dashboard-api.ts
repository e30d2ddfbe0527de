/**
 * The dashboard's JSON API behind the routes: the state every tab polls, and the ramp and
 * kill changes, checked field by field before they reach the flag control. Refusals are
 * {@link HttpError}s whose messages name the migration, the field and the value sent.
 */
import { z } from 'zod';
import type { MigrationFlagChange } from '../../adapters/postgres-flags/migration-flags.js';
import { ErrorCode, type Migration, STAGES } from '../../src/index.js';
import { previewValue } from '../../src/internal.js';
import { collectDashboardState, type DashboardState, type StateSources } from './dashboard-state.js';
import type { DashboardFlagControl } from './flag-control.js';
import { HttpError } from './http-error.js';
import { messageOf } from './http-server.js';
import { SERIES_WINDOWS } from './series-windows.js';

/** What a change answers with. */
export interface ChangeAnswer {
  readonly ok: true;
  /** For the operator, naming the migration and what changed. */
  readonly message: string;
  /** What the flag control returned. */
  readonly result: unknown;
}

/** The API's handlers. */
export interface DashboardApi {
  /**
   * The body of `GET /api/state`, its series over the window named `window` (one of
   * {@link SERIES_WINDOWS}), or over the dashboard's own window when none is named.
   */
  state(window?: string): Promise<DashboardState>;
  /** The migration named `name`; refuses (404) one not on this dashboard. */
  migration(name: string): Migration;
  /** `POST /api/migrations/:name/flags` with its parsed JSON body. */
  changeFlags(migration: Migration, body: unknown): Promise<ChangeAnswer>;
  /** `POST /api/migrations/:name/kill` with its parsed JSON body. */
  kill(migration: Migration, body: unknown): Promise<ChangeAnswer>;
}

/** The body of `POST /api/migrations/:name/flags`. */
const flagChangeSchema = z
  .strictObject({
    stage: z.enum(STAGES, { error: `must be one of ${STAGES.join(', ')}` }).optional(),
    percent: z
      .number({ error: 'must be a number from 0 to 100' })
      .refine(Number.isFinite, 'must be a number from 0 to 100')
      .refine((value) => value >= 0 && value <= 100, 'must be a number from 0 to 100')
      .optional(),
  })
  .refine((change) => change.stage !== undefined || change.percent !== undefined, {
    error: 'nothing to change: give "stage" and/or "percent"',
  });

/** The body of `POST /api/migrations/:name/kill`: nothing, or an empty object. */
const killSchema = z.strictObject({});

/** Values sent are shown as sent (JSON), up to this many characters. */
const VALUE_PREVIEW_CHARS = 80;

/**
 * The API over `sources`. Every migration in `sources.migrations` has its own name (the
 * options check makes sure).
 */
export function createDashboardApi(sources: StateSources): DashboardApi {
  const byName = new Map(sources.migrations.map((migration) => [migration.name, migration]));
  const flags = sources.flags;

  // Tabs polling the same window at once share one read of the database.
  const readings = new Map<string, Promise<DashboardState>>();

  function control(): DashboardFlagControl {
    if (flags === undefined) {
      throw new HttpError(
        403,
        'ramp and kill controls are off: the dashboard was started without a flag control (the PostgreSQL flag provider)',
      );
    }
    return flags;
  }

  return {
    state(window) {
      const key = window ?? '';
      let reading = readings.get(key);
      if (reading === undefined) {
        reading = collectDashboardState(withWindow(sources, window)).finally(() => readings.delete(key));
        readings.set(key, reading);
      }
      return reading;
    },

    migration(name) {
      const migration = byName.get(name);
      if (migration === undefined) {
        throw new HttpError(404, `migration ${JSON.stringify(name)} is not on this dashboard`);
      }
      return migration;
    },

    async changeFlags(migration, body) {
      const flagControl = control();
      const change = flagChangeSchema.safeParse(body);
      if (!change.success) throw bodyError(migration.name, body, change.error);
      const result = await callControl(() => flagControl.set(migration, change.data as MigrationFlagChange));
      const what = [
        change.data.stage === undefined ? undefined : `stage ${change.data.stage}`,
        change.data.percent === undefined ? undefined : `read ${change.data.percent}%`,
      ].filter((part) => part !== undefined);
      return { ok: true, message: `Migration "${migration.name}": ${what.join(', ')}.`, result };
    },

    async kill(migration, body) {
      const flagControl = control();
      if (body !== undefined && !killSchema.safeParse(body).success) {
        throw new HttpError(
          400,
          `migration "${migration.name}": a kill takes no parameters, got ${previewValue(body, VALUE_PREVIEW_CHARS)}`,
        );
      }
      const result = await callControl(() => flagControl.kill(migration));
      const changed = (result as { changed?: unknown } | null)?.changed;
      return {
        ok: true,
        message:
          changed === false
            ? `Migration "${migration.name}" already reads old only; nothing changed.`
            : `Migration "${migration.name}" killed: every process reads old again.`,
        result,
      };
    },
  };
}

/** `sources` with its series over the window named `name`; refuses (400) a name that is none. */
function withWindow(sources: StateSources, name: string | undefined): StateSources {
  if (name === undefined) return sources;
  const window = SERIES_WINDOWS.find((candidate) => candidate.name === name);
  if (window === undefined) {
    throw new HttpError(
      400,
      `window must be one of ${SERIES_WINDOWS.map((w) => w.name).join(', ')}, got ${previewValue(name, VALUE_PREVIEW_CHARS)}`,
    );
  }
  return {
    ...sources,
    metrics: { ...sources.metrics, seriesWindowMs: window.windowMs, seriesBucketMs: window.bucketMs },
  };
}

/** A 400 naming the field and the value sent, from the first zod issue. */
function bodyError(migration: string, body: unknown, error: z.ZodError): HttpError {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    return new HttpError(
      400,
      `migration "${migration}": unknown field "${issue.keys[0]}"; give "stage" and/or "percent"`,
      { cause: error },
    );
  }
  const field = issue.path[0];
  if (field === undefined) return new HttpError(400, `migration "${migration}": ${issue.message}`, { cause: error });
  const value = (body as Record<string, unknown>)[String(field)];
  return new HttpError(
    400,
    `migration "${migration}": ${String(field)} ${issue.message}, got ${previewValue(value, VALUE_PREVIEW_CHARS)}`,
    { cause: error },
  );
}

/**
 * Runs a flag control call. Its refusals keep their meaning: a `ValidationError` is 400 (the
 * change is invalid), a `StageTransitionError` 409 (not allowed now); anything else is 500.
 */
async function callControl(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return await call();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === ErrorCode.Validation) throw new HttpError(400, messageOf(error), { cause: error });
    if (code === ErrorCode.StageTransition) {
      throw new HttpError(409, messageOf(error), { code: ErrorCode.StageTransition, cause: error });
    }
    throw new HttpError(500, `the flag change failed: ${messageOf(error)}`, { code: failureCode(code), cause: error });
  }
}

/** A failed flag change keeps the flagshift code of its cause; a bare error is the flag store's (a driver's). */
function failureCode(code: unknown): ErrorCode {
  return Object.values(ErrorCode).includes(code as ErrorCode) ? (code as ErrorCode) : ErrorCode.Driver;
}
