import { describe, expect, it } from 'vitest';
import { HttpError } from '../../../apps/dashboard/http-error.js';
import { ErrorCode, FlagshiftError } from '../../../src/kernel/errors.js';

describe('HttpError', () => {
  it('is a flagshift error: a refused request is a validation error unless a code is given', () => {
    const refused = new HttpError(404, 'migration "x" is not on this dashboard');
    expect(refused).toBeInstanceOf(FlagshiftError);
    expect(refused).toMatchObject({
      name: 'HttpError',
      code: ErrorCode.Validation,
      status: 404,
      headers: {},
      message: 'migration "x" is not on this dashboard',
    });
    const method = new HttpError(405, 'method DELETE is not allowed here; use GET or HEAD', {
      headers: { allow: 'GET, HEAD' },
    });
    expect(method).toMatchObject({ code: 'validation', status: 405, headers: { allow: 'GET, HEAD' } });
    const cause = new Error('deadlock detected');
    const failed = new HttpError(500, 'the flag change failed: deadlock detected', { code: ErrorCode.Driver, cause });
    expect(failed).toMatchObject({ code: 'driver', status: 500, cause });
  });
});
