import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { columnCodec, type LogicalKind, logicalKindOf } from '../../src/model/column-codec.js';

const KINDS: readonly LogicalKind[] = ['string', 'number', 'bigint', 'boolean', 'date', 'json'];
const TYPES: readonly (string | undefined)[] = [undefined, 'text', 'jsonb', 'bigint', 'integer', 'numeric(10,2)'];

describe('columnCodec: nulls', () => {
  for (const kind of KINDS) {
    for (const type of TYPES) {
      it(`${kind} over ${type ?? 'an unknown type'}: null and undefined decode and encode to null`, () => {
        const codec = columnCodec(type, kind);
        expect(codec.decode(null)).toBeNull();
        expect(codec.decode(undefined)).toBeNull();
        expect(codec.encode(null)).toBeNull();
        expect(codec.encode(undefined)).toBeNull();
      });
    }
  }
});

describe('columnCodec: casts', () => {
  it.each([
    ['bigint', '::bigint'],
    ['numeric(10,2)', '::numeric(10,2)'],
    ['character varying(255)', '::varchar'],
    ['VARCHAR (3)[]', '::varchar[]'],
    ['char(5)', '::bpchar'],
    ['character(5)', '::bpchar'],
    ['bit(8)', '::varbit'],
    ['bit varying(8)', '::varbit'],
    ['varchar', '::varchar'],
    ['char', '::bpchar'],
    ['character', '::bpchar'],
    ['bit', '::varbit'],
    ['character varying', '::character varying'],
    ['char(2)[]', '::bpchar[]'],
    ['charset_name', '::charset_name'],
    ['pg_catalog.char', '::pg_catalog.char'],
    ['pg_catalog.bpchar(3)', '::bpchar'],
    ['pg_catalog.bit(4)', '::varbit'],
    ['timestamp(3)', '::timestamp(3)'],
    ['text[]', '::text[]'],
    ['timestamp with time zone', '::timestamp with time zone'],
    ['  jsonb  ', '::jsonb'],
  ])('casts a parameter of a %j column with %j', (type, cast) => {
    expect(columnCodec(type, 'string').cast).toBe(cast);
  });

  it('keeps the length of a text column holding a date: varchar(10) takes the day of the ISO form', () => {
    expect(columnCodec('varchar(10)', 'date').cast).toBe('::varchar(10)');
    expect(columnCodec('varchar(30)', 'date').cast).toBe('::varchar(30)');
    // Part of the time of day would be kept and read back as local time: an error instead.
    expect(columnCodec('varchar(16)', 'date').cast).toBe('::varchar');
    expect(columnCodec('char', 'date').cast).toBe('::bpchar');
  });

  it('adds no cast when the type is unknown', () => {
    expect(columnCodec(undefined, 'number').cast).toBe('');
  });
});

describe('columnCodec: number', () => {
  it.each(['bigint', 'numeric(10,2)', 'integer', undefined])(
    'decodes pg-style strings of a %s column to numbers',
    (type) => {
      const codec = columnCodec(type, 'number');
      expect(codec.decode('42')).toBe(42);
      expect(codec.decode('-7')).toBe(-7);
      expect(codec.decode('10.50')).toBe(10.5);
      expect(codec.decode('0')).toBe(0);
    },
  );

  it('passes PGlite-style numbers through', () => {
    expect(columnCodec('bigint', 'number').decode(42)).toBe(42);
    expect(columnCodec('numeric', 'number').decode(10.5)).toBe(10.5);
  });

  it('decodes bigints (PGlite int8 beyond 2^53) to numbers', () => {
    expect(columnCodec('bigint', 'number').decode(42n)).toBe(42);
  });

  it('encodes numbers unchanged for numeric columns', () => {
    expect(columnCodec('bigint', 'number').encode(42)).toBe(42);
    expect(columnCodec(undefined, 'number').encode(1.5)).toBe(1.5);
  });

  it('encodes numbers as strings for text columns', () => {
    expect(columnCodec('text', 'number').encode(42)).toBe('42');
    expect(columnCodec('character varying(20)', 'number').encode(1.5)).toBe('1.5');
  });
});

describe('columnCodec: bigint', () => {
  const codec = columnCodec('bigint', 'bigint');

  it('decodes pg-style strings to BigInt without losing precision', () => {
    expect(codec.decode('9007199254740993')).toBe(9007199254740993n);
    expect(codec.decode('-9223372036854775808')).toBe(-9223372036854775808n);
  });

  it('decodes PGlite-style numbers and bigints to BigInt', () => {
    expect(codec.decode(42)).toBe(42n);
    expect(codec.decode(9007199254740993n)).toBe(9007199254740993n);
  });

  it('encodes BigInt as a decimal string, which both drivers bind exactly', () => {
    expect(codec.encode(9007199254740993n)).toBe('9007199254740993');
    expect(codec.encode(-1n)).toBe('-1');
  });
});

describe('columnCodec: string', () => {
  it('passes strings through for text columns', () => {
    const codec = columnCodec('text', 'string');
    expect(codec.decode('ada')).toBe('ada');
    expect(codec.encode('ada')).toBe('ada');
  });

  it('stringifies non-string driver values of a non-JSON column', () => {
    const codec = columnCodec('integer', 'string');
    expect(codec.decode(42)).toBe('42');
  });

  it('over jsonb: a parsed JSON string decodes to itself and encodes as JSON text', () => {
    const codec = columnCodec('jsonb', 'string');
    expect(codec.decode('ada')).toBe('ada');
    expect(codec.encode('ada')).toBe('"ada"');
  });

  it('over jsonb: a parsed non-string value decodes to its JSON text', () => {
    expect(columnCodec('jsonb', 'string').decode({ a: 1 })).toBe('{"a":1}');
  });
});

describe('columnCodec: boolean', () => {
  it('passes booleans through both ways', () => {
    const codec = columnCodec('boolean', 'boolean');
    expect(codec.decode(true)).toBe(true);
    expect(codec.decode(false)).toBe(false);
    expect(codec.encode(false)).toBe(false);
  });
});

describe('columnCodec: date', () => {
  const codec = columnCodec('timestamp with time zone', 'date');

  it('passes Date objects through on decode', () => {
    const at = new Date('2024-05-06T07:08:09.123Z');
    expect(codec.decode(at)).toBe(at);
  });

  it('decodes ISO strings to Dates', () => {
    expect(codec.decode('2024-05-06T07:08:09.123Z')).toEqual(new Date('2024-05-06T07:08:09.123Z'));
  });

  it('encodes Dates as ISO strings, so no driver applies a local time zone', () => {
    expect(codec.encode(new Date('2024-05-06T07:08:09.123Z'))).toBe('2024-05-06T07:08:09.123Z');
  });

  it('encodes strings unchanged', () => {
    expect(codec.encode('2024-05-06')).toBe('2024-05-06');
  });
});

describe('columnCodec: json', () => {
  it.each(['text', 'character varying(2000)', 'varchar'])(
    'over %s: parses the JSON text the driver returns',
    (type) => {
      const codec = columnCodec(type, 'json');
      expect(codec.decode('{"a":[1,2,{"b":null}]}')).toEqual({ a: [1, 2, { b: null }] });
      expect(codec.decode('"text"')).toBe('text');
      expect(codec.decode('42')).toBe(42);
      expect(codec.decode('null')).toBeNull();
    },
  );

  it.each(['jsonb', 'json', 'JSONB'])('over %s: passes the already parsed value through', (type) => {
    const codec = columnCodec(type, 'json');
    const value = { a: [1, 2] };
    expect(codec.decode(value)).toBe(value);
    expect(codec.decode('{"a":1}')).toBe('{"a":1}');
    expect(codec.decode(42)).toBe(42);
  });

  it('over an unknown type: passes driver values through', () => {
    expect(columnCodec(undefined, 'json').decode('{"a":1}')).toBe('{"a":1}');
  });

  it.each(['text', 'jsonb', undefined])('over %s: encodes with JSON.stringify', (type) => {
    const codec = columnCodec(type, 'json');
    expect(codec.encode({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
    expect(codec.encode(['a', 'b'])).toBe('["a","b"]');
    expect(codec.encode('x')).toBe('"x"');
    expect(codec.encode(0)).toBe('0');
    expect(codec.encode(false)).toBe('false');
  });

  it('over text: decode(encode(value)) round trips', () => {
    const codec = columnCodec('text', 'json');
    for (const value of [{ a: 1 }, [1, 'two', null], 'three', 4, true]) {
      expect(codec.decode(codec.encode(value))).toEqual(value);
    }
  });
});

describe('logicalKindOf', () => {
  it.each([
    ['z.string()', z.string(), 'string'],
    ['z.number()', z.number(), 'number'],
    ['z.bigint()', z.bigint(), 'bigint'],
    ['z.boolean()', z.boolean(), 'boolean'],
    ['z.date()', z.date(), 'date'],
    ['z.object({})', z.object({}), 'json'],
    ['z.string().nullable().optional()', z.string().nullable().optional(), 'string'],
    ['z.number().pipe(...)', z.number().pipe(z.number().min(0)), 'number'],
    ['z.boolean().catch(false)', z.boolean().catch(false), 'boolean'],
    ['z.date().readonly()', z.date().readonly(), 'date'],
  ] as const)('%s is of kind %s', (_name, schema, kind) => {
    expect(logicalKindOf(schema)).toBe(kind);
  });
});

describe('logicalKindOf: unions and enums', () => {
  it('a union of string literals is a string, not JSON', () => {
    expect(logicalKindOf(z.union([z.literal('on'), z.literal('off')]))).toBe('string');
    expect(columnCodec('text', logicalKindOf(z.union([z.literal('on'), z.literal('off')]))).decode('on')).toBe('on');
  });
  it('a union of different kinds is JSON', () => {
    expect(logicalKindOf(z.union([z.string(), z.number()]))).toBe('json');
  });
  it('a numeric native enum is a number', () => {
    enum Level {
      Low = 0,
      High = 1,
    }
    expect(logicalKindOf(z.enum(Level))).toBe('number');
    expect(columnCodec('integer', 'number').decode(1)).toBe(1);
  });
});

describe('columnCodec: array columns', () => {
  it('a JSON field over a text[] column is sent as an array, not JSON text', () => {
    expect(columnCodec('text[]', 'json').encode(['a', 'b'])).toEqual(['a', 'b']);
    expect(columnCodec('jsonb', 'json').encode(['a', 'b'])).toBe('["a","b"]');
  });
});

describe('columnCodec: bytes', () => {
  it.each(['bytea', undefined])('sends a Uint8Array over %j as it is, never as JSON', (type) => {
    const bytes = new Uint8Array([0, 255]);
    expect(columnCodec(type, 'json').encode(bytes)).toBe(bytes);
    const buffer = Buffer.from([1, 2]);
    expect(columnCodec(type, 'json').encode(buffer)).toBe(buffer);
  });

  it('reads a Buffer back as a plain Uint8Array over the same memory', () => {
    const buffer = Buffer.from([9, 8, 7]);
    const decoded = columnCodec('bytea', 'json').decode(buffer) as Uint8Array;
    expect(decoded.constructor).toBe(Uint8Array);
    expect([...decoded]).toEqual([9, 8, 7]);
    expect(decoded.buffer).toBe(buffer.buffer);
  });

  it('reads the hex text form of a bytea column as bytes', () => {
    expect(columnCodec('bytea', 'json').decode('\\x00ff10')).toEqual(new Uint8Array([0, 255, 16]));
    expect(columnCodec('bytea', 'json').decode('not hex')).toBe('not hex');
  });
});

describe('columnCodec: timestamp without time zone', () => {
  it.each(['timestamp', 'timestamp(3)', 'TIMESTAMP (6) WITHOUT TIME ZONE', 'timestamp without time zone'])(
    'reads the text form of a %j column as a UTC wall clock',
    (type) => {
      const codec = columnCodec(type, 'date');
      expect(codec.decode('2024-06-01 12:00:00.5')).toEqual(new Date('2024-06-01T12:00:00.500Z'));
      expect(codec.decode('2024-06-01 12:00:00')).toEqual(new Date('2024-06-01T12:00:00Z'));
      expect(codec.encode(new Date('2024-06-01T12:00:00Z'))).toBe('2024-06-01T12:00:00.000Z');
    },
  );

  it('leaves a timestamptz value to the driver, which reads its zone', () => {
    const instant = new Date('2024-06-01T12:00:00Z');
    expect(columnCodec('timestamptz', 'date').decode(instant)).toBe(instant);
    expect(columnCodec('timestamp with time zone', 'date').decode(instant)).toBe(instant);
  });
});
