import { z } from 'zod';
import {
  ConfigurationError,
  type FlagContext,
  FlagEvaluationError,
  type FlagSource,
  type FlagValueType,
} from '../../src/index.js';
import { describeValue, parseOptions } from '../../src/internal.js';
import { openFeatureSdk } from './peer.js';

const { ErrorCode, OpenFeature, ProviderEvents, StandardResolutionReasons } = openFeatureSdk;

/** A value of an OpenFeature evaluation context: JSON, or a `Date`. */
export type EvaluationContextValueLike =
  | string
  | number
  | boolean
  | null
  | Date
  | EvaluationContextValueLike[]
  | { [key: string]: EvaluationContextValueLike };

/**
 * An OpenFeature evaluation context, declared here so that flagshift's types hold in a
 * project without `@openfeature/server-sdk`; it is OpenFeature's `EvaluationContext`.
 */
export type EvaluationContextLike = { targetingKey?: string } & Record<string, EvaluationContextValueLike>;

/** The part of an OpenFeature `EvaluationDetails` the adapter reads. */
export interface EvaluationDetailsLike<T> {
  /** The value, or the default when `errorCode` is set. */
  readonly value: T;
  /** OpenFeature's error code, e.g. `FLAG_NOT_FOUND`; unset when the evaluation succeeded. */
  readonly errorCode?: string;
  /** What went wrong, when `errorCode` is set. */
  readonly errorMessage?: string;
  /** Why the provider resolved this value, e.g. `STATIC` or `TARGETING_MATCH`. */
  readonly reason?: string;
}

/**
 * The part of an OpenFeature server `Client` the adapter uses. A real `Client` satisfies
 * it; so does a wrapper. `track` is optional because SDKs before 1.16 lack it.
 */
export interface OpenFeatureClientLike {
  /** Evaluates a string flag. */
  getStringDetails(
    flagKey: string,
    defaultValue: string,
    context?: EvaluationContextLike,
  ): Promise<EvaluationDetailsLike<string>>;
  /** Evaluates a number flag. */
  getNumberDetails(
    flagKey: string,
    defaultValue: number,
    context?: EvaluationContextLike,
  ): Promise<EvaluationDetailsLike<number>>;
  /** Calls `handler` on the provider event `eventType`. */
  addHandler(eventType: string, handler: () => void): void;
  /** Stops calling `handler` on `eventType`. */
  removeHandler(eventType: string, handler: () => void): void;
  /** Reports a tracking event to the provider. */
  track?(eventName: string, context?: EvaluationContextLike, details?: Record<string, string | number | boolean>): void;
}
/** Options of {@link createOpenFeatureFlags}. Validated when the source is created. */
export interface OpenFeatureFlagsOptions {
  /**
   * The client to evaluate flags with. Give either this or `domain`.
   * @default OpenFeature.getClient(domain), or the default domain's client without `domain`
   */
  readonly client?: OpenFeatureClientLike;
  /**
   * The OpenFeature domain whose provider serves the flags, when no `client` is given.
   * @default undefined (the default provider)
   */
  readonly domain?: string;
}

/**
 * An OpenFeature evaluation that came back with an `errorCode`. Thrown from `resolve` so the
 * stage resolver falls back. `reason` is `'type'` for `TYPE_MISMATCH`, which the resolver
 * counts as a type fallback, like a value of the wrong type; other codes count as errors.
 */
export class OpenFeatureEvaluationError extends FlagEvaluationError {
  /** OpenFeature's error code, e.g. `FLAG_NOT_FOUND`. */
  readonly errorCode: string;

  constructor(flagKey: string, errorCode: string, errorMessage: string | undefined) {
    super(
      `openfeature evaluation of flag "${flagKey}" failed with ${errorCode}${errorMessage ? `: ${errorMessage}` : ''}`,
      { reason: errorCode === ErrorCode.TYPE_MISMATCH ? 'type' : 'error' },
    );
    this.errorCode = errorCode;
  }
}

const optionsSchema = z.strictObject({
  client: z
    .custom<OpenFeatureClientLike>(
      (value) =>
        typeof (value as Partial<OpenFeatureClientLike> | null)?.getStringDetails === 'function' &&
        typeof (value as Partial<OpenFeatureClientLike>).getNumberDetails === 'function',
    )
    .optional(),
  domain: z.string().min(1).optional(),
});

function validate(options: unknown): z.infer<typeof optionsSchema> {
  const valid = parseOptions('openfeature flags', optionsSchema, options, {
    client: 'an OpenFeature client (with getStringDetails and getNumberDetails)',
    domain: 'a non-empty string',
  });
  if (valid.client !== undefined && valid.domain !== undefined) {
    throw new ConfigurationError(
      `openfeature flags options "client" and "domain" exclude each other, got both (domain ${describeValue(valid.domain)})`,
      { path: 'domain' },
    );
  }
  return valid;
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

// OpenFeature context values are JSON plus Date. Anything else (functions, symbols, bigints,
// NaN, class instances, cycles) is dropped rather than handed to a provider that may choke on it.
function toContextValue(value: unknown, ancestors: Set<object>): EvaluationContextValueLike | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : undefined;
    case 'object': {
      if (value === null) return null;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
      if (ancestors.has(value)) return undefined;
      ancestors.add(value);
      try {
        if (Array.isArray(value)) {
          const items: EvaluationContextValueLike[] = [];
          for (const item of value) {
            const converted = toContextValue(item, ancestors);
            if (converted !== undefined) items.push(converted);
          }
          return items;
        }
        if (!isPlainObject(value)) return undefined;
        return toContextRecord(value as Record<string, unknown>, ancestors);
      } finally {
        ancestors.delete(value);
      }
    }
    default:
      return undefined;
  }
}

function toContextRecord(
  record: Readonly<Record<string, unknown>>,
  ancestors: Set<object>,
): Record<string, EvaluationContextValueLike> {
  const result: Record<string, EvaluationContextValueLike> = {};
  for (const [key, value] of Object.entries(record)) {
    const converted = toContextValue(value, ancestors);
    if (converted !== undefined) result[key] = converted;
  }
  return result;
}

/**
 * Maps a flagshift context to an OpenFeature evaluation context: `targetingKey` when it is a
 * string, and every attribute that is JSON or a `Date`; other values are dropped.
 */
export function toEvaluationContext(context: FlagContext): EvaluationContextLike {
  const { targetingKey, ...attributes } = context;
  const result: EvaluationContextLike = toContextRecord(attributes, new Set());
  if (typeof targetingKey === 'string') result.targetingKey = targetingKey;
  return result;
}

function toTrackingDetails(
  details: Readonly<Record<string, string | number | boolean>>,
): Record<string, string | number | boolean> {
  const result: Record<string, string | number | boolean> = { ...details };
  // OpenFeature reserves `value` for a number; a provider may reject any other type there.
  if (typeof result['value'] !== 'number') delete result['value'];
  return result;
}

function valueOrThrow<T extends string | number>(flagKey: string, details: EvaluationDetailsLike<T>): T {
  if (details.errorCode !== undefined) {
    throw new OpenFeatureEvaluationError(flagKey, details.errorCode, details.errorMessage);
  }
  return details.value;
}

/**
 * A flag source over OpenFeature, so any OpenFeature provider (flagd, LaunchDarkly,
 * Unleash, ...) can route migrations.
 *
 * OpenFeature evaluation never throws; it returns the default value with an `errorCode`.
 * This source turns such a result into a thrown {@link OpenFeatureEvaluationError}, so
 * flagshift falls back to the last known good value instead of acting on the placeholder
 * default. A `TYPE_MISMATCH` counts as a type fallback, every other code as an error.
 *
 * @param options - See {@link OpenFeatureFlagsOptions}. @default {}
 * @throws ConfigurationError when an option is invalid.
 *
 * @example
 * ```ts
 * import { OpenFeature } from '@openfeature/server-sdk';
 * import { createOpenFeatureFlags } from 'flagshift/openfeature';
 *
 * await OpenFeature.setProviderAndWait('migrations', myProvider);
 * const flags = createOpenFeatureFlags({ domain: 'migrations' });
 * const stage = await flags.resolve('users-rename.stage', 'string', { targetingKey: 'user-42' });
 * ```
 */
export function createOpenFeatureFlags(options: OpenFeatureFlagsOptions = {}): FlagSource {
  const valid = validate(options);
  const client: OpenFeatureClientLike =
    valid.client ?? (valid.domain === undefined ? OpenFeature.getClient() : OpenFeature.getClient(valid.domain));

  // Flags whose last evaluation came back `STATIC`: no targeting rule was evaluated, so the
  // value is the same for every targeting key. Any other reason (`TARGETING_MATCH`,
  // `SPLIT`, even `DEFAULT` or `CACHED`, which may follow a rule) says it may differ.
  const staticFlags = new Set<string>();
  const note = <T extends string | number>(
    flagKey: string,
    details: EvaluationDetailsLike<T>,
  ): EvaluationDetailsLike<T> => {
    if (details.reason === StandardResolutionReasons.STATIC && details.errorCode === undefined)
      staticFlags.add(flagKey);
    else staticFlags.delete(flagKey);
    return details;
  };

  return {
    async resolve(flagKey: string, type: FlagValueType, context: FlagContext): Promise<unknown> {
      const evaluationContext = toEvaluationContext(context);
      if (type === 'string')
        return valueOrThrow(flagKey, note(flagKey, await client.getStringDetails(flagKey, '', evaluationContext)));
      return valueOrThrow(
        flagKey,
        note(flagKey, await client.getNumberDetails(flagKey, Number.NaN, evaluationContext)),
      );
    },
    variesByTargetingKey(flagKey: string): boolean {
      return !staticFlags.has(flagKey);
    },
    onConfigurationChanged(listener: () => void): () => void {
      // Our own handler, so removing it cannot remove a handler someone else registered.
      // A changed configuration may have added a rule to a static flag: forget what the
      // reasons said before the listener drops the cached decisions.
      const handler = () => {
        staticFlags.clear();
        listener();
      };
      client.addHandler(ProviderEvents.ConfigurationChanged, handler);
      return () => client.removeHandler(ProviderEvents.ConfigurationChanged, handler);
    },
    track(eventName, context, details) {
      try {
        client.track?.(eventName, toEvaluationContext(context), toTrackingDetails(details));
      } catch {
        // Tracking is best effort: a mismatch report must never fail the read that found it.
      }
    },
  };
}
