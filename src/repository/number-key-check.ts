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
 * refuses more.
 */
export function numberKeyCheck(schema: z.ZodType | undefined): ((value: number) => boolean) | undefined {
  const def = definitionOf(schema);
  if (def === undefined || def['type'] !== 'number' || def['coerce'] === true) return undefined;
  if (!Object.keys(def).every((key) => SCHEMA_KEYS.has(key))) return undefined;
  const tests: ((value: number) => boolean)[] = [Number.isFinite];
  // `z.int()` and its kind are number schemas that are their own format check.
  if (def['check'] !== undefined) {
    const test = checkTest(def);
    if (test === undefined) return undefined;
    tests.push(test);
  }
  const checks = def['checks'] ?? [];
  if (!Array.isArray(checks)) return undefined;
  for (const check of checks) {
    const checkDef = definitionOf(check);
    if (checkDef === undefined || !Object.keys(checkDef).every((key) => CHECK_KEYS.has(key))) return undefined;
    const test = checkTest(checkDef);
    if (test === undefined) return undefined;
    tests.push(test);
  }
  return (value) => {
    for (let index = 0; index < tests.length; index++) if (!tests[index]!(value)) return false;
    return true;
  };
}

function definitionOf(value: unknown): Definition | undefined {
  const def = (value as { _zod?: { def?: unknown } } | null | undefined)?._zod?.def;
  return typeof def === 'object' && def !== null ? (def as Definition) : undefined;
}

/** The test of one check's definition, `undefined` for a check it doesn't know. */
function checkTest(def: Definition): ((value: number) => boolean) | undefined {
  switch (def['check']) {
    case 'number_format':
      return typeof def['format'] === 'string' && Object.hasOwn(INTEGER_FORMATS, def['format'])
        ? INTEGER_FORMATS[def['format']]
        : undefined;
    case 'greater_than': {
      const bound = def['value'];
      if (typeof bound !== 'number') return undefined;
      return def['inclusive'] === true ? (value) => value >= bound : (value) => value > bound;
    }
    case 'less_than': {
      const bound = def['value'];
      if (typeof bound !== 'number') return undefined;
      return def['inclusive'] === true ? (value) => value <= bound : (value) => value < bound;
    }
    default:
      return undefined;
  }
}
