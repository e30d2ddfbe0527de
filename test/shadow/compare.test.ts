import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CompareOptions,
  deepEqual,
  diffEntities,
  diffResultSets,
  ORDER_FIELD,
  ROW_FIELD,
  resultSetFieldDiffs,
  valueKind,
} from '../../src/shadow/compare.js';
import { canonicalize, redactValue } from '../../src/shadow/redact.js';

const FIELDS = ['name', 'email', 'age'] as const;

const anything = fc.anything({
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
});

describe('diffEntities', () => {
  it('compare: equal entities give no diffs', () => {
    const entity = { name: 'Ada', email: 'ada@example.com', age: 36 };
    expect(diffEntities(FIELDS, entity, { ...entity }, undefined, false)).toEqual([]);
  });

  it('compare: only the listed fields are compared', () => {
    expect(diffEntities(['name'], { name: 'a', extra: 1 }, { name: 'a', extra: 2 }, undefined, true)).toEqual([]);
  });

  it('compare: a different value is a value diff', () => {
    expect(diffEntities(FIELDS, { name: 'Ada', age: 36 }, { name: 'Ada', age: 37 }, undefined, true)).toEqual([
      { field: 'age', kind: 'value', old: 36, new: 37 },
    ]);
  });

  it('compare: different runtime types are a type diff', () => {
    const cases: [unknown, unknown][] = [
      [1, '1'],
      [1, 1n],
      [new Date(0), new Date(0).toISOString()],
      [[1], { 0: 1 }],
      [true, 'true'],
      [new Uint8Array([1]), [1]],
    ];
    for (const [a, b] of cases) {
      expect(diffEntities(['v'], { v: a }, { v: b }, undefined, true)).toEqual([
        { field: 'v', kind: 'type', old: a, new: b },
      ]);
    }
  });

  it('compare: a null or undefined field on one side only is missing on that side', () => {
    expect(diffEntities(['v'], { v: null }, { v: 'x' }, undefined, true)).toEqual([
      { field: 'v', kind: 'missing-old', old: null, new: 'x' },
    ]);
    expect(diffEntities(['v'], { v: 'x' }, {}, undefined, true)).toEqual([
      { field: 'v', kind: 'missing-new', old: 'x', new: undefined },
    ]);
  });

  it('compare: null and undefined on both sides are equal', () => {
    expect(diffEntities(['v', 'w'], { v: null }, { v: undefined, w: null }, undefined, false)).toEqual([]);
  });

  it('compare: an entity missing on one side gives one diff per field', () => {
    const entity = { name: 'Ada', email: 'ada@example.com', age: 36 };
    expect(diffEntities(FIELDS, undefined, entity, undefined, true)).toEqual(
      FIELDS.map((field) => ({ field, kind: 'missing-old', old: undefined, new: entity[field] })),
    );
    expect(diffEntities(FIELDS, entity, undefined, undefined, false).map((d) => [d.field, d.kind, d.new])).toEqual(
      FIELDS.map((field) => [field, 'missing-new', undefined]),
    );
    expect(diffEntities(FIELDS, undefined, undefined, undefined, false)).toEqual([]);
  });

  it('compare: inherited properties are not field values', () => {
    expect(diffEntities(['constructor', 'toString'], {}, { constructor: 'x' }, undefined, true)).toEqual([
      { field: 'constructor', kind: 'missing-old', old: undefined, new: 'x' },
    ]);
  });

  it('compare: values are redacted unless raw', () => {
    const [redacted] = diffEntities(['email'], { email: 'a@x.io' }, { email: 'b@x.io' }, undefined, false);
    expect(redacted).toEqual({ field: 'email', kind: 'value', old: redactValue('a@x.io'), new: redactValue('b@x.io') });
    expect(JSON.stringify(redacted)).not.toContain('@x.io');
    const [raw] = diffEntities(['email'], { email: 'a@x.io' }, { email: 'b@x.io' }, undefined, true);
    expect(raw).toEqual({ field: 'email', kind: 'value', old: 'a@x.io', new: 'b@x.io' });
  });

  it('compare: redaction leaves absence visible and hides present values of a missing entity', () => {
    expect(diffEntities(['v'], { v: null }, { v: 'secret' }, undefined, false)).toEqual([
      { field: 'v', kind: 'missing-old', old: null, new: redactValue('secret') },
    ]);
    expect(diffEntities(['v'], { v: 'secret' }, undefined, undefined, false)).toEqual([
      { field: 'v', kind: 'missing-new', old: redactValue('secret'), new: undefined },
    ]);
  });

  it('compare: the normalizer applies to both sides before comparing, diffs show values as read', () => {
    const options: CompareOptions = {
      normalize: (field, value) =>
        field === 'email' && typeof value === 'string' ? value.trim().toLowerCase() : value,
    };
    expect(diffEntities(['email'], { email: ' Ada@X.io' }, { email: 'ada@x.io' }, options, true)).toEqual([]);
    expect(diffEntities(['name'], { name: 'Ada ' }, { name: 'Ada' }, options, true)).toEqual([
      { field: 'name', kind: 'value', old: 'Ada ', new: 'Ada' },
    ]);
  });

  it('compare: the normalizer decides the kind (empty string normalized to null)', () => {
    const options: CompareOptions = { normalize: (_field, value) => (value === '' ? null : value) };
    expect(diffEntities(['v'], { v: '' }, { v: null }, options, true)).toEqual([]);
    expect(diffEntities(['v'], { v: '' }, { v: 'x' }, options, true)).toEqual([
      { field: 'v', kind: 'missing-old', old: '', new: 'x' },
    ]);
  });

  it('compare: the comparator replaces deep equality and may defer with undefined', () => {
    const seen: string[] = [];
    const options: CompareOptions = {
      comparator: (field, a, b) => {
        seen.push(field);
        if (field === 'price') return Math.abs(Number(a) - Number(b)) < 0.01;
        return undefined;
      },
    };
    expect(
      diffEntities(['price', 'name'], { price: 1.001, name: 'a' }, { price: 1.0, name: 'a' }, options, true),
    ).toEqual([]);
    expect(diffEntities(['price', 'name'], { price: 1, name: 'a' }, { price: 2, name: 'b' }, options, true)).toEqual([
      { field: 'price', kind: 'value', old: 1, new: 2 },
      { field: 'name', kind: 'value', old: 'a', new: 'b' },
    ]);
    expect(seen).toEqual(['price', 'name', 'price', 'name']);
  });

  it('compare: the comparator can make unequal what deep equality calls equal', () => {
    const options: CompareOptions = { comparator: (_f, a, b) => a === b };
    expect(diffEntities(['v'], { v: [1] }, { v: [1] }, options, true)).toEqual([
      { field: 'v', kind: 'value', old: [1], new: [1] },
    ]);
  });

  it('compare: an ignore list skips fields, also for a missing entity', () => {
    const options: CompareOptions = { ignore: ['age'] };
    expect(diffEntities(FIELDS, { name: 'a', age: 1 }, { name: 'a', age: 2 }, options, true)).toEqual([]);
    expect(diffEntities(FIELDS, { name: 'a' }, undefined, options, true).map((d) => d.field)).toEqual([
      'name',
      'email',
    ]);
  });

  it('compare: an ignore predicate drops differences with the normalized values', () => {
    const calls: unknown[][] = [];
    const options: CompareOptions = {
      normalize: (_f, v) => (typeof v === 'string' ? v.toUpperCase() : v),
      ignore: (field, a, b) => {
        calls.push([field, a, b]);
        return field === 'name' && a === null;
      },
    };
    expect(
      diffEntities(['name', 'email'], { name: null, email: 'a' }, { name: 'x', email: 'b' }, options, true),
    ).toEqual([{ field: 'email', kind: 'value', old: 'a', new: 'b' }]);
    expect(calls).toEqual([
      ['name', null, 'X'],
      ['email', 'A', 'B'],
    ]);
  });

  it('compare: the ignore predicate does not hide a missing entity', () => {
    const options: CompareOptions = { ignore: () => true };
    expect(diffEntities(['v'], { v: 1 }, undefined, options, true)).toHaveLength(1);
  });

  it('compare: an entity is equal to its structured clone (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), anything), (entity) => {
        const fields = Object.keys(entity);
        expect(diffEntities(fields, entity, entity, undefined, false)).toEqual([]);
        expect(diffEntities(fields, entity, structuredClone(entity), undefined, false)).toEqual([]);
      }),
    );
  });

  it('compare: a changed field is always reported (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.integer()), fc.string(), fc.integer(), (entity, field, delta) => {
        fc.pre(delta !== 0);
        const changed = { ...entity, [field]: (entity[field] ?? 0) + delta };
        const base = { ...entity, [field]: entity[field] ?? 0 };
        const diffs = diffEntities(Object.keys(changed), base, changed, undefined, true);
        expect(diffs.map((d) => d.field)).toEqual([field]);
      }),
    );
  });
});

describe('deepEqual', () => {
  it('compare: primitives, NaN and -0', () => {
    expect(deepEqual(1, 1)).toBe(true);
    expect(deepEqual(Number.NaN, Number.NaN)).toBe(true);
    expect(deepEqual(0, -0)).toBe(true);
    expect(deepEqual(1n, 1n)).toBe(true);
    expect(deepEqual(1n, 1)).toBe(false);
    expect(deepEqual('a', 'b')).toBe(false);
    expect(deepEqual(null, undefined)).toBe(false);
  });

  it('compare: dates by instant, binary by bytes', () => {
    expect(deepEqual(new Date(5), new Date(5))).toBe(true);
    expect(deepEqual(new Date(5), new Date(6))).toBe(false);
    expect(deepEqual(new Date(Number.NaN), new Date(Number.NaN))).toBe(true);
    expect(deepEqual(Buffer.from('ab'), new Uint8Array([97, 98]))).toBe(true);
    expect(deepEqual(Buffer.from('ab'), Buffer.from('ac'))).toBe(false);
    expect(deepEqual(Buffer.from('ab'), Buffer.from('abc'))).toBe(false);
  });

  it('compare: arrays by position, objects in any key order', () => {
    expect(deepEqual([1, [2, { a: 3 }]], [1, [2, { a: 3 }]])).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual({ a: 1, b: { c: [1] } }, { b: { c: [1] }, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual({ a: undefined }, { b: undefined })).toBe(true);
    expect(deepEqual({ a: null }, {})).toBe(false);
  });

  it('compare: maps and sets by content, cycles terminate', () => {
    expect(deepEqual(new Set([1, 2]), new Set([2, 1]))).toBe(true);
    expect(deepEqual(new Map([['a', { x: 1 }]]), new Map([['a', { x: 1 }]]))).toBe(true);
    expect(deepEqual(new Map([['a', 1]]), new Map([['a', 2]]))).toBe(false);
    const a: Record<string, unknown> = {};
    a.self = a;
    const b: Record<string, unknown> = {};
    b.self = b;
    expect(deepEqual(a, b)).toBe(true);
  });

  it('compare: agrees with canonical forms (property)', () => {
    fc.assert(
      fc.property(anything, anything, (a, b) => {
        expect(deepEqual(a, b)).toBe(canonicalize(a) === canonicalize(b));
        expect(deepEqual(a, structuredClone(a))).toBe(true);
      }),
    );
  });

  it('compare: agrees with canonical forms on a small domain where equal pairs are common (property)', () => {
    const leaf = fc.constantFrom<unknown>(
      0,
      -0,
      1,
      Number.NaN,
      1n,
      '1',
      null,
      undefined,
      true,
      new Date(0),
      Buffer.from([1]),
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 2 }),
      object: fc.dictionary(fc.constantFrom('a', 'b'), tie('value'), { maxKeys: 2 }),
    }));
    let equalPairs = 0;
    fc.assert(
      fc.property(value, value, (a, b) => {
        const equal = deepEqual(a, b);
        if (equal) equalPairs++;
        expect(equal).toBe(canonicalize(a) === canonicalize(b));
        expect(deepEqual(b, a)).toBe(equal);
      }),
      { numRuns: 500 },
    );
    expect(equalPairs).toBeGreaterThan(10);
  });

  it('compare: valueKind names runtime kinds', () => {
    expect(
      [1, '1', 1n, null, undefined, new Date(), Buffer.from(''), [], {}, new Map(), new Set()].map(valueKind),
    ).toEqual(['number', 'string', 'bigint', 'null', 'undefined', 'date', 'bytes', 'array', 'object', 'map', 'set']);
  });
});

describe('diffResultSets', () => {
  type Row = { id: number; name: string };
  const keyOf = (row: Row) => String(row.id);
  const rows = (...pairs: [number, string][]): Row[] => pairs.map(([id, name]) => ({ id, name }));

  it('compare: identical result sets match', () => {
    const result = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [2, 'b']),
      rows([1, 'a'], [2, 'b']),
      undefined,
      false,
    );
    expect(result).toEqual({
      matched: true,
      missingOld: [],
      missingNew: [],
      diffs: [],
      orderDiffers: false,
      oldCount: 2,
      newCount: 2,
    });
  });

  it('compare: reports rows on one side only, per-key field diffs and order', () => {
    const result = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [2, 'b'], [3, 'c'], [4, 'd']),
      rows([3, 'c'], [2, 'B'], [1, 'a'], [5, 'e']),
      undefined,
      true,
    );
    expect(result).toEqual({
      matched: false,
      missingOld: ['5'],
      missingNew: ['4'],
      diffs: [{ key: '2', diffs: [{ field: 'name', kind: 'value', old: 'b', new: 'B' }] }],
      orderDiffers: true,
      oldCount: 4,
      newCount: 4,
    });
  });

  it('compare: order alone does not unmatch, and a moved row outside the common set does not count', () => {
    const reordered = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [2, 'b']),
      rows([2, 'b'], [1, 'a']),
      undefined,
      false,
    );
    expect(reordered.matched).toBe(true);
    expect(reordered.orderDiffers).toBe(true);
    const extra = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [2, 'b']),
      rows([9, 'z'], [1, 'a'], [2, 'b']),
      undefined,
      false,
    );
    expect(extra.orderDiffers).toBe(false);
    expect(extra.matched).toBe(false);
  });

  it('compare: keys are redacted unless raw', () => {
    const result = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [2, 'x']),
      rows([2, 'y'], [3, 'c']),
      undefined,
      false,
    );
    expect(result.missingNew).toEqual([redactValue('1')]);
    expect(result.missingOld).toEqual([redactValue('3')]);
    expect(result.diffs).toEqual([
      {
        key: redactValue('2'),
        diffs: [{ field: 'name', kind: 'value', old: redactValue('x'), new: redactValue('y') }],
      },
    ]);
  });

  it('compare: duplicate keys pair by occurrence', () => {
    const result = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [1, 'b']),
      rows([1, 'a'], [1, 'c'], [1, 'd']),
      undefined,
      true,
    );
    expect(result.diffs).toEqual([{ key: '1', diffs: [{ field: 'name', kind: 'value', old: 'b', new: 'c' }] }]);
    expect(result.missingOld).toEqual(['1']);
    expect(result.missingNew).toEqual([]);
  });

  it('compare: options apply to every row', () => {
    const result = diffResultSets(keyOf, ['name'], rows([1, 'a']), rows([1, 'A']), { ignore: ['name'] }, true);
    expect(result.matched).toBe(true);
  });

  it('compare: flattens to the diffs of one mismatch sample', () => {
    const result = diffResultSets(
      keyOf,
      ['name'],
      rows([1, 'a'], [2, 'b'], [4, 'd']),
      rows([2, 'B'], [1, 'a'], [5, 'e']),
      undefined,
      true,
    );
    expect(resultSetFieldDiffs(result)).toEqual([
      { field: ROW_FIELD, kind: 'missing-new', old: '4', new: undefined },
      { field: ROW_FIELD, kind: 'missing-old', old: undefined, new: '5' },
      { field: '2.name', kind: 'value', old: 'b', new: 'B' },
    ]);
    expect(resultSetFieldDiffs(result, { includeOrder: true }).at(-1)).toEqual({
      field: ORDER_FIELD,
      kind: 'value',
      old: undefined,
      new: undefined,
    });
  });
});
