/**
 * The argument parsers and the options several commands share. A parser turns the text an
 * operator typed into a value, or throws commander's InvalidArgumentError, which the CLI
 * prints as one line and exits 2 on.
 */

import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { STAGES } from '../../../src/index.js';

/** A parser of a whole number from `min` to `max`; `name` is the option, for the message. */
export function integer(name: string, min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

/**
 * A plain decimal number (`10`, `12.5`, `0.1`), else NaN. Number() alone also takes `0x10`,
 * `0b11`, `1e2` and `Infinity`, which no operator means as a percentage or a fraction.
 */
function decimal(text: string): number {
  const trimmed = text.trim();
  return /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : Number.NaN;
}

/** `--percent`: a read percentage from 0 to 100, as a plain decimal number (a trailing % allowed). */
export function percentArg(value: string): number {
  const n = decimal(value.trim().replace(/%$/, ''));
  if (Number.isNaN(n) || n < 0 || n > 100) {
    throw new InvalidArgumentError('the read percentage must be a decimal number from 0 to 100, such as 10 or 12.5.');
  }
  return n;
}

/** `--pause-ratio`: the pause after each batch as a multiple of its duration, 0 to 100. */
export function pauseRatioArg(value: string): number {
  const n = decimal(value);
  if (Number.isNaN(n) || n > 100) {
    throw new InvalidArgumentError('the pause ratio must be a decimal number from 0 to 100, such as 0.3 or 1.');
  }
  return n;
}

/** `--sample`: a fraction in (0, 1] (`0.1`) or a percentage (`10%`), as a fraction. */
export function sampleArg(value: string): number {
  const text = value.trim();
  const n = text.endsWith('%') ? decimal(text.slice(0, -1)) / 100 : decimal(text);
  if (Number.isNaN(n) || n <= 0 || n > 1) {
    throw new InvalidArgumentError('the sample must be a fraction in (0, 1] such as 0.1, or a percentage such as 10%.');
  }
  return n;
}

/** `--percents`: increasing read percentages in (0, 100], comma-separated. */
export function percentsArg(value: string): number[] {
  const list = value.split(',').map(decimal);
  const increasing = list.every((n, i) => Number.isFinite(n) && n > 0 && n <= 100 && (i === 0 || n > list[i - 1]!));
  if (list.length === 0 || !increasing) {
    throw new InvalidArgumentError(
      'the ramp must be increasing percentages in (0, 100], comma-separated, e.g. 1,10,50,100.',
    );
  }
  return list;
}

/** The options of a command that runs DDL (expand, contract): how each statement waits for its lock. */
export function ddlOptions(command: Command): Command {
  return command
    .option(
      '--lock-timeout-ms <ms>',
      'lock_timeout of each statement; a statement that waits longer is retried with backoff (default: 500)',
      integer('--lock-timeout-ms', 1, 600_000),
    )
    .option(
      '--statement-timeout-ms <ms>',
      'statement_timeout of each statement, 0 for none (default: 60000)',
      integer('--statement-timeout-ms', 0, 86_400_000),
    )
    .option(
      '--max-attempts <n>',
      'attempts per statement when it times out on a lock (default: 8)',
      integer('--max-attempts', 1, 1000),
    );
}

/** `--stage`, for commands that check the stage, when the stage flag lives outside the flags table. */
export function stageOption(): Option {
  return new Option(
    '--stage <stage>',
    'the stage every application is at, when the stage flag is kept in another flag system (not in the flags table)',
  ).choices(STAGES);
}
