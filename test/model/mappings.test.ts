import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  changeType,
  customMapping,
  joinText,
  merge,
  moveColumn,
  rename,
  split,
  splitText,
} from '../../src/model/mappings.js';

describe('rename', () => {
  it('maps one field from the old column to the new one, values unchanged', () => {
    const spec = rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' });
    expect(spec).toEqual({
      kind: 'rename',
      fields: ['username'],
      old: [{ column: 'user_name', type: 'text' }],
      new: [{ column: 'username', type: 'text' }],
      oldKinds: 'field',
      sql: { forward: ['{user_name}'], backward: ['{username}'] },
    });
    expect(spec.forward).toBeUndefined();
    expect(spec.backward).toBeUndefined();
  });

  it('leaves the type unknown when none is given', () => {
    const spec = rename({ field: 'username', from: 'user_name', to: 'username' });
    expect(spec.old).toEqual([{ column: 'user_name' }]);
    expect(spec.new).toEqual([{ column: 'username' }]);
  });
});

describe('changeType', () => {
  it.each([
    ['timestamp', 'timestamptz'],
    ['timestamp(3)', 'timestamptz(3)'],
    ['timestamp without time zone', 'timestamp with time zone'],
    ['timestamptz', 'timestamp'],
  ])('converts %s to %s by the UTC wall clock, whatever the session TimeZone', (from, to) => {
    const spec = changeType({ field: 'at', from: { column: 'a', type: from }, to: { column: 'b', type: to } });
    expect(spec.sql!.forward[0]).toBe(`(({a}) AT TIME ZONE 'UTC')::${to}`);
    expect(spec.sql!.backward[0]).toBe(`(({b}) AT TIME ZONE 'UTC')::${from}`);
  });

  it('casts each side to the other side type by default', () => {
    const spec = changeType({
      field: 'visits',
      from: { column: 'visits', type: 'integer' },
      to: { column: 'visits_big', type: 'bigint' },
    });
    expect(spec).toMatchObject({
      kind: 'change-type',
      fields: ['visits'],
      old: [{ column: 'visits', type: 'integer' }],
      new: [{ column: 'visits_big', type: 'bigint' }],
      oldKinds: 'field',
      sql: { forward: ['({visits})::bigint'], backward: ['({visits_big})::integer'] },
    });
    expect(spec.forward).toBeUndefined();
    expect(spec.backward).toBeUndefined();
  });

  it('uses the given SQL in place of the casts', () => {
    const spec = changeType({
      field: 'payload',
      from: { column: 'payload', type: 'text' },
      to: { column: 'payload_json', type: 'jsonb' },
      forwardSql: "coalesce({payload}, 'null')::jsonb",
      backwardSql: '{payload_json}::text',
    });
    expect(spec.sql).toEqual({ forward: ["coalesce({payload}, 'null')::jsonb"], backward: ['{payload_json}::text'] });
  });
});

describe('split', () => {
  const spec = split({
    from: 'name',
    into: { firstName: 'first_name', lastName: { column: 'last_name', type: 'varchar(100)' } },
  });

  it('maps one text column to one new column per field, in order', () => {
    expect(spec.kind).toBe('split');
    expect(spec.fields).toEqual(['firstName', 'lastName']);
    expect(spec.old).toEqual([{ column: 'name', type: 'text' }]);
    expect(spec.new).toEqual([
      { column: 'first_name', type: 'text' },
      { column: 'last_name', type: 'varchar(100)' },
    ]);
    expect(spec.oldKinds).toEqual(['string']);
  });

  it('has one SQL forward per new column and one backward for the old column', () => {
    expect(spec.sql?.forward).toHaveLength(2);
    expect(spec.sql?.backward).toHaveLength(1);
    expect(spec.sql?.forward[0]).toContain('{name}');
    expect(spec.sql?.backward[0]).toContain('{first_name}');
    expect(spec.sql?.backward[0]).toContain('{last_name}');
  });

  it('forward splits at the first separator and the last part takes the rest', () => {
    expect(spec.forward?.(['Ada King Lovelace'])).toEqual(['Ada', 'King Lovelace']);
    expect(spec.forward?.(['Ada'])).toEqual(['Ada', null]);
    expect(spec.forward?.([null])).toEqual([null, null]);
  });

  it('backward joins the parts', () => {
    expect(spec.backward?.(['Ada', 'King Lovelace'])).toEqual(['Ada King Lovelace']);
    expect(spec.backward?.(['Ada', null])).toEqual(['Ada']);
    expect(spec.backward?.([null, null])).toEqual([null]);
  });

  it('uses the given separator, quoted as an SQL literal', () => {
    const custom = split({ from: 'pair', into: { a: 'a', b: 'b' }, separator: "'" });
    expect(custom.forward?.(["x'y'z"])).toEqual(['x', "y'z"]);
    expect(custom.sql?.forward[0]).toContain("''''");
  });
});

describe('merge', () => {
  const spec = merge({
    from: ['first_name', 'last_name'],
    into: { field: 'fullName', column: 'full_name' },
    separator: ', ',
  });

  it('maps several text columns to one new column', () => {
    expect(spec.kind).toBe('merge');
    expect(spec.fields).toEqual(['fullName']);
    expect(spec.old).toEqual([
      { column: 'first_name', type: 'text' },
      { column: 'last_name', type: 'text' },
    ]);
    expect(spec.new).toEqual([{ column: 'full_name', type: 'text' }]);
    expect(spec.oldKinds).toEqual(['string', 'string']);
    expect(spec.sql?.forward).toHaveLength(1);
    expect(spec.sql?.backward).toHaveLength(2);
  });

  it('forward joins and backward splits, the inverse of split', () => {
    expect(spec.forward?.(['Ada', 'Lovelace'])).toEqual(['Ada, Lovelace']);
    expect(spec.backward?.(['Ada, Lovelace'])).toEqual(['Ada', 'Lovelace']);
    expect(spec.backward?.(['Ada, King, Lovelace'])).toEqual(['Ada', 'King, Lovelace']);
  });

  it('keeps the given type of the new column', () => {
    expect(merge({ from: ['a', 'b'], into: { field: 'ab', column: 'ab', type: 'varchar(200)' } }).new).toEqual([
      { column: 'ab', type: 'varchar(200)' },
    ]);
  });
});

describe('moveColumn', () => {
  it('keeps the value and names the other table and its key', () => {
    const spec = moveColumn({
      field: 'bio',
      from: 'bio',
      to: { table: 'user_profiles', column: 'bio', key: ['user_id'] },
      type: 'text',
    });
    expect(spec).toEqual({
      kind: 'move',
      fields: ['bio'],
      old: [{ column: 'bio', type: 'text' }],
      new: [{ column: 'bio', type: 'text' }],
      newTable: { name: 'user_profiles', key: ['user_id'] },
      oldKinds: 'field',
      sql: { forward: ['{bio}'], backward: ['{bio}'] },
    });
  });

  it('leaves the key to default to the main table key when none is given', () => {
    const spec = moveColumn({ field: 'bio', from: 'bio', to: { table: 'app.user_profiles', column: 'about' } });
    expect(spec.newTable).toEqual({ name: 'app.user_profiles' });
  });
});

describe('customMapping', () => {
  const forward = ([price]: readonly unknown[]) => [price == null ? null : Math.round((price as number) * 100)];
  const backward = ([cents]: readonly unknown[]) => [cents == null ? null : (cents as number) / 100];

  it('keeps the transforms and orders the SQL forms by column', () => {
    const spec = customMapping({
      fields: { priceCents: { column: 'price_cents', type: 'bigint' } },
      old: [{ column: 'price', type: 'numeric', kind: 'number' }],
      forward,
      backward,
      sql: { forward: { price_cents: 'round({price} * 100)' }, backward: { price: '{price_cents} / 100.0' } },
    });
    expect(spec).toMatchObject({
      kind: 'custom',
      fields: ['priceCents'],
      old: [{ column: 'price', type: 'numeric' }],
      new: [{ column: 'price_cents', type: 'bigint' }],
      oldKinds: ['number'],
      sql: { forward: ['round({price} * 100)'], backward: ['{price_cents} / 100.0'] },
    });
    expect(spec.old[0]).not.toHaveProperty('kind');
    expect(spec.forward).toBe(forward);
    expect(spec.backward).toBe(backward);
  });

  it('reads old columns as json when no kind is given and has no SQL forms when none are given', () => {
    const spec = customMapping({ fields: { a: 'a2' }, old: [{ column: 'a1' }], forward, backward });
    expect(spec.oldKinds).toEqual(['json']);
    expect(spec.new).toEqual([{ column: 'a2' }]);
    expect(spec.sql).toBeUndefined();
  });
});

describe('splitText', () => {
  it.each([
    ['Ada Lovelace', ' ', 2, ['Ada', 'Lovelace']],
    ['Ada King Lovelace', ' ', 2, ['Ada', 'King Lovelace']],
    ['Ada King Lovelace', ' ', 3, ['Ada', 'King', 'Lovelace']],
    ['Ada', ' ', 3, ['Ada', null, null]],
    ['Ada ', ' ', 3, ['Ada', '', null]],
    ['', ' ', 2, ['', null]],
    [' ', ' ', 2, ['', '']],
    ['  ', ' ', 2, ['', ' ']],
    ['a, b, c', ', ', 2, ['a', 'b, c']],
    ['a,b', ', ', 2, ['a,b', null]],
    ['x||y', '|', 3, ['x', '', 'y']],
  ] as const)('splits %j at %j into %i parts', (value, separator, parts, expected) => {
    expect(splitText(value, separator, parts)).toEqual(expected);
  });

  it('gives all-null parts for null and undefined', () => {
    expect(splitText(null, ' ', 3)).toEqual([null, null, null]);
    expect(splitText(undefined, ' ', 2)).toEqual([null, null]);
  });
});

describe('joinText', () => {
  it.each([
    [['Ada', 'Lovelace'], ' ', 'Ada Lovelace'],
    [['Ada', null], ' ', 'Ada'],
    [['Ada', null, null], ' ', 'Ada'],
    [[null, 'Lovelace'], ' ', ' Lovelace'],
    [['Ada', null, 'Lovelace'], ', ', 'Ada, , Lovelace'],
    [['', ''], '|', '|'],
    [['', null], '|', ''],
  ] as const)('joins %j with %j into %j', (values, separator, expected) => {
    expect(joinText(values, separator)).toBe(expected);
  });

  it('is null when every part is absent', () => {
    expect(joinText([null, null], ' ')).toBeNull();
    expect(joinText([undefined, null], ' ')).toBeNull();
    expect(joinText([], ' ')).toBeNull();
  });
});

describe('splitText and joinText', () => {
  const separators = [' ', ', ', '|'] as const;
  // Text built from separator characters as well as arbitrary ones, so leading, trailing
  // and repeated separators come up often.
  const text = (separator: string) =>
    fc
      .array(fc.oneof(fc.constant(separator), fc.constant(separator[0]!), fc.string({ unit: 'grapheme' })), {
        maxLength: 8,
      })
      .map((pieces) => pieces.join(''));

  for (const separator of separators) {
    it(`joinText(splitText(s, ${JSON.stringify(separator)}, n)) === s for every string s and n in 2..4`, () => {
      fc.assert(
        fc.property(text(separator), fc.integer({ min: 2, max: 4 }), (value, parts) => {
          const split = splitText(value, separator, parts);
          expect(split).toHaveLength(parts);
          expect(joinText(split, separator)).toBe(value);
        }),
        { numRuns: 300 },
      );
    });

    it(`splitText(joinText(parts, ${JSON.stringify(separator)})) === parts when no part but the last holds the separator`, () => {
      const part = fc.string({ unit: 'grapheme' }).filter((value) => !value.includes(separator));
      fc.assert(
        fc.property(fc.array(part, { minLength: 1, maxLength: 3 }), fc.string({ unit: 'grapheme' }), (head, last) => {
          const parts = [...head, last];
          expect(splitText(joinText(parts, separator), separator, parts.length)).toEqual(parts);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('round trips null', () => {
    for (const parts of [2, 3, 4]) expect(joinText(splitText(null, ' ', parts), ' ')).toBeNull();
  });
});
