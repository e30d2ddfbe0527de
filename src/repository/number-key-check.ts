/**
 * A check of a numeric key that needs no parse: on the read path a key is validated on
 * every call, and zod's parse builds a context, a payload, an issues array and a result
 * record each time, which showed in the CPU of the benchmark's saturated reads
 * (BENCHMARKS.md, "What the benchmark changed in the SDK").
 */
import type { z } from 'zod';

/** A definition of zod 4, as its schemas and checks carry it (`schema._zod.def`). */
type Definition = Readonly<Record<string, unknown>>;

/** Keys of a number schema's definition that don't change what it accepts. */
const SCHEMA_KEYS = new Set(['type', 'checks', 'check', 'format', 'abort', 'error', 'coerce']);
/** The same for a check's definition. */
const CHECK_KEYS = new Set(['type', 'check', 'format', 'abort', 'error', 'when', 'value', 'inclusive']);

const INTEGER_FORMATS: Readonly<Record<string, (value: number) => boolean>> = {
  safeint: Number.isSafeInteger,
  int32: (value) => Number.isInteger(value) && value >= -(2 ** 31) && value <= 2 ** 31 - 1,
  uint32: (value) => Number.isInteger(value) && value >= 0 && value <= 2 ** 32 - 1,
};

/**
 * A test that passes a number only where `schema` certainly accepts it as it is: for a
 * zod number schema whose checks are all integer formats (`int()`, `int32()`,
 * `uint32()`) and bounds (`positive()`, `gte(1)`, `lt(100)`...), read from its
 * definition; `undefined` for any other schema (coercion, refinements, `multipleOf`,
 * wrappers such as `optional()`, other types, another version's definitions).
 *
 * The test may refuse a number the schema accepts, never the reverse: a caller parses
 * with the schema whenever the test refuses, so the schema still decides, and words,
 * every error. It applies every check, including one a `when` would skip, which only
 * refuses more. A check is known by its class (the traits zod gives it) and its
 * definition together: the class is what zod runs, and a definition's `check` can be
 * set by the parameters it was made with.
 */
export function numberKeyCheck(schema: z.ZodType | undefined): ((value: number) => boolean) | undefined {
  const zod = internalsOf(schema);
  if (zod === undefined || !zod.traits.has('$ZodNumber')) return undefined;
  const { def } = zod;
  if (def['type'] !== 'number' || def['coerce']) return undefined;
  if (!hasOnly(def, SCHEMA_KEYS)) return undefined;
  const tests: ((value: number) => boolean)[] = [Number.isFinite];
  // `z.int()` and its kind are number schemas that are their own format check.
  if (zod.traits.has('$ZodCheck') || def['check'] !== undefined) {
    const test = checkTest(zod);
    if (test === undefined) return undefined;
    tests.push(test);
  }
  const checks = def['checks'] ?? [];
  if (!Array.isArray(checks)) return undefined;
  for (const check of checks) {
    const internals = internalsOf(check);
    if (internals === undefined || !hasOnly(internals.def, CHECK_KEYS)) return undefined;
    const test = checkTest(internals);
    if (test === undefined) return undefined;
    tests.push(test);
  }
  return (value) => {
    for (let index = 0; index < tests.length; index++) if (!tests[index]!(value)) return false;
    return true;
  };
}

/** What zod 4 keeps on a schema or a check (`._zod`): its class names and its definition. */
interface Internals {
  readonly traits: ReadonlySet<string>;
  readonly def: Definition;
}

/** Whether `def` has no key but `known` ones: any other may change what the schema accepts. */
function hasOnly(def: Definition, known: ReadonlySet<string>): boolean {
  return Object.keys(def).every((key) => known.has(key));
}

function internalsOf(value: unknown): Internals | undefined {
  const zod = (value as { _zod?: { traits?: unknown; def?: unknown } } | null | undefined)?._zod;
  const def = zod?.def;
  if (!(zod?.traits instanceof Set) || typeof def !== 'object' || def === null) return undefined;
  return { traits: zod.traits as ReadonlySet<string>, def: def as Definition };
}

/** The test of one check, `undefined` for a check it doesn't know (by class and definition alike). */
function checkTest({ traits, def }: Internals): ((value: number) => boolean) | undefined {
  const kind = def['check'];
  if (traits.has('$ZodCheckNumberFormat') && kind === 'number_format') {
    const format = def['format'];
    return typeof format === 'string' && Object.hasOwn(INTEGER_FORMATS, format) ? INTEGER_FORMATS[format] : undefined;
  }
  const bound = def['value'];
  if (typeof bound !== 'number') return undefined;
  const inclusive = def['inclusive'] === true;
  if (traits.has('$ZodCheckGreaterThan') && kind === 'greater_than') {
    return inclusive ? (value) => value >= bound : (value) => value > bound;
  }
  if (traits.has('$ZodCheckLessThan') && kind === 'less_than') {
    return inclusive ? (value) => value <= bound : (value) => value < bound;
  }
  return undefined;
}
