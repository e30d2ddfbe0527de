import { describe, expect, it } from 'vitest';
import { CliError, ExitCode } from '../../../apps/cli/cli-error.js';
import { ErrorCode, FlagshiftError } from '../../../src/index.js';

describe('CliError', () => {
  it("is a FlagshiftError: bad input by default, code 'usage' and exit 2", () => {
    const error = new CliError('unknown migration "x"', { details: ['at ./flagshift.config.ts:1:1'] });
    expect(error).toBeInstanceOf(FlagshiftError);
    expect(error).toMatchObject({
      name: 'CliError',
      code: ErrorCode.Usage,
      exitCode: ExitCode.Usage,
      details: ['at ./flagshift.config.ts:1:1'],
      message: 'unknown migration "x"',
    });
  });

  it('a refused operation carries the code of what refused it, and its own exit code and cause', () => {
    const cause = new Error('gate closed');
    const error = new CliError('contract refused', {
      code: ErrorCode.StageTransition,
      exitCode: ExitCode.Failure,
      cause,
    });
    expect(error).toMatchObject({ code: 'stage-transition', exitCode: 1, details: [], cause });
  });
});
