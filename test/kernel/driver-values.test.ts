import { describe, expect, it } from 'vitest';
import { isoOf, parseIntArray, parseJson, parseTextArray, sqlLiteral, toDate } from '../../src/kernel/driver-values.js';

describe('driver values', () => {
  it('parseJson: parsed values pass through, JSON text is parsed, other text stays text', () => {
    expect(parseJson({ a: 1 })).toEqual({ a: 1 });
    expect(parseJson(null)).toBeNull();
    expect(parseJson('["42","b"]')).toEqual(['42', 'b']);
    expect(parseJson('not json')).toBe('not json');
  });

  it('parseTextArray: an array, or the text form with quotes and escapes', () => {
    expect(parseTextArray(['a', 1])).toEqual(['a', '1']);
    expect(parseTextArray('{a,"b c","d\\"e"}')).toEqual(['a', 'b c', 'd"e']);
    expect(parseTextArray('{}')).toEqual([]);
    expect(parseTextArray(null)).toEqual([]);
  });

  it('parseIntArray: an array, an int[] as text, or an int2vector as text', () => {
    expect(parseIntArray([1, '2'])).toEqual([1, 2]);
    expect(parseIntArray('{3,0,1}')).toEqual([3, 0, 1]);
    expect(parseIntArray('3 0 1')).toEqual([3, 0, 1]);
    expect(parseIntArray('{}')).toEqual([]);
    expect(parseIntArray(undefined)).toEqual([]);
  });

  it('toDate and isoOf: a Date or timestamp text; isoOf keeps text that is no timestamp', () => {
    const at = new Date('2024-05-01T12:00:00.000Z');
    expect(toDate(at)).toBe(at);
    expect(toDate('2024-05-01 12:00:00+00').getTime()).toBe(at.getTime());
    expect(isoOf(at)).toBe('2024-05-01T12:00:00.000Z');
    expect(isoOf('2024-05-01 14:00:00+02')).toBe('2024-05-01T12:00:00.000Z');
    expect(isoOf('never')).toBe('never');
  });

  it('sqlLiteral: single-quoted, quotes doubled', () => {
    expect(sqlLiteral("it's")).toBe("'it''s'");
    expect(sqlLiteral('')).toBe("''");
  });
});
