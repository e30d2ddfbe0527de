/**
 * The one check of options objects. Every factory that takes options (`createX(options)`)
 * validates them here, once and eagerly, against a strict zod schema, so every refusal reads
 * the same: what was configured, which option, what it must be and what it got.
 */
import type { z } from 'zod';
import { describeValue } from './describe-value.js';
import { ConfigurationError } from './errors.js';

/** What an option must be, by its dotted path or its own name: `{ cacheSize: 'an integer of at least 1' }`. */
export type OptionExpectations = Readonly<Record<string, string>>;

/**
 * `options` checked against `schema` (a strict object schema). Throws a
 * {@link ConfigurationError} whose `path` is the offending option:
 *
 * - `<subject> options must be an object, got 42`
 * - `<subject> option "cacheSize" is not a known option`
 * - `<subject> option "ttlMs" must be an integer from 0 to 2147483647, got "5"`
 *
 * What an option must be comes from `expected` (by dotted path, then by the option's own
 * name), else from zod's message.
 *
 * @example
 * ```ts
 * const valid = parseOptions('stage resolver', optionsSchema, options, { cacheSize: 'an integer of at least 1' });
 * ```
 */
export function parseOptions<S extends z.ZodType>(
  subject: string,
  schema: S,
  options: unknown,
  expected: OptionExpectations = {},
): z.output<S> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigurationError(`${subject} options must be an object, got ${describeValue(options)}`);
  }
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  throw optionError(subject, result.error, options, expected);
}

/** The {@link ConfigurationError} for the first issue of `error`, as {@link parseOptions} words it. */
export function optionError(
  subject: string,
  error: z.ZodError,
  options: unknown,
  expected: OptionExpectations = {},
): ConfigurationError {
  const issue = firstIssue(error, options);
  if (issue.unknownKey !== undefined) {
    const path = issue.path === '' ? issue.unknownKey : `${issue.path}.${issue.unknownKey}`;
    return new ConfigurationError(`${subject} option "${path}" is not a known option`, { path });
  }
  const { path, value } = issue;
  if (path === '') {
    return new ConfigurationError(`${subject} options ${issue.message}`, { cause: error });
  }
  const want = expected[path] ?? expected[path.split('.').at(-1)!];
  const rule = want === undefined ? lowerFirst(issue.message) : `must be ${want}`;
  return new ConfigurationError(`${subject} option "${path}" ${rule}, got ${describeValue(value)}`, {
    path,
    cause: error,
  });
}

/** The first problem zod found in `input`: where (a dotted path), the value there, and zod's message. */
export interface OptionIssue {
  /** Dotted path of the offending value (the object holding an unknown key); `''` for `input` as a whole. */
  readonly path: string;
  readonly value: unknown;
  readonly message: string;
  /** The key the schema doesn't know, when that is the problem. */
  readonly unknownKey: string | undefined;
}

/** The first issue of `error`, located in `input`. */
export function firstIssue(error: z.ZodError, input: unknown): OptionIssue {
  const issue = error.issues[0]!;
  const base = issue.path.map(String);
  const unknownKey = issue.code === 'unrecognized_keys' ? (issue.keys[0] ?? '') : undefined;
  const path = base.join('.');
  const value = base.reduce<unknown>(
    (at, key) => (at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined),
    input,
  );
  return { path, value, message: issue.message, unknownKey };
}

function lowerFirst(text: string): string {
  return text.length === 0 ? text : text[0]!.toLowerCase() + text.slice(1);
}
