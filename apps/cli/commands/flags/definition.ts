/**
 * `flagshift flags get|set|kill`: their arguments, options and help. The runners load when
 * a subcommand runs.
 */
import { type Command, Option } from 'commander';
import { STAGES } from '../../../../src/index.js';
import { percentArg } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { FlagsKillOptions, FlagsSetOptions } from './run.js';

/** Adds `flagshift flags` and its subcommands to `program`. */
export function flagsCommand(program: Command, execute: Execute): Command {
  const flags = program
    .command('flags')
    .summary('get, set and kill stage flags in the flags table')
    .description(
      "read and change migrations' stage and read-percentage flags in flagshift's PostgreSQL flags table; every process using the postgres flag provider follows at once",
    );

  flags
    .command('get')
    .summary('show stage and read percentage')
    .description("show migrations' stored stage and read percentage")
    .argument('[migration]', 'name of one migration (default: all of them)')
    .action((name: string | undefined, _options: object, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runFlagsGet(ctx, name)),
    );

  flags
    .command('set')
    .summary('set stage and/or read percentage')
    .description("set a migration's stage and/or read percentage (logged in the event log)")
    .argument('<migration>', 'name of the migration')
    .addOption(new Option('-s, --stage <stage>', 'the new stage').choices(STAGES))
    .option('-p, --percent <p>', 'share of entities read from new in stage live, 0 to 100', percentArg)
    .option('--reason <text>', 'why, recorded in the event log')
    .option(
      '--force',
      'make a refused move anyway (logged with --reason): one the promotion gate holds for lack of evidence, a stage whose columns expand has not added or contract dropped, reading new before the backfill finished, or leaving complete for a stage that reads old',
    )
    .addHelpText(
      'after',
      `\nStages, in order: ${STAGES.join(', ')}.\n\nA move that serves more new data (into live, a higher percentage, rampdown, complete)\nneeds evidence the fleet published since the last stage change (docs/STAGES.md,\n"Promotion gate"): 1000 comparisons with no mismatch, the new side's errors and\nlatency within bounds. Moving back, and flags kill, are never held.\n\nExamples:\n  flagshift flags set users-username --stage dualwrite\n  flagshift flags set users-username --stage live --percent 10 --reason "canary fine"`,
    )
    .action((name: string, options: FlagsSetOptions, command: Command) => {
      if (options.stage === undefined && options.percent === undefined) {
        command.error('error: give --stage <stage> and/or --percent <p>', {
          exitCode: 2,
          code: 'flagshift.nothingToSet',
        });
      }
      return execute(command, async (ctx) => (await import('./run.js')).runFlagsSet(ctx, name, options));
    });

  flags
    .command('kill')
    .summary('reads back to old at once; dual writes go on')
    .description(
      'the kill switch: send reads back to the old columns at once (shadow, live and rampdown become dualwrite, read percentage 0); dual writes continue, so nothing drifts',
    )
    .argument('<migration>', 'name of the migration')
    .option('--reason <text>', 'why, recorded in the event log')
    .addHelpText('after', '\nExample:\n  flagshift flags kill users-username --reason "mismatches in live"')
    .action((name: string, options: FlagsKillOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runFlagsKill(ctx, name, options)),
    );

  return flags;
}
