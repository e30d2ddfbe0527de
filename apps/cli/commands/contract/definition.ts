/** `flagshift contract`: its arguments, options and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import { ddlOptions, stageOption } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { ContractCommandOptions } from './run.js';

/** Adds `flagshift contract <migration>` to `program`. */
export function contractCommand(program: Command, execute: Execute): Command {
  return ddlOptions(
    program
      .command('contract')
      .summary('drop the old columns, once verified and complete')
      .description(
        'drop the sync triggers and old columns and make required new columns NOT NULL safely; refused until the stage is complete and verify passed after the last stage change',
      )
      .argument('<migration>', 'name of the migration')
      .option('--dry-run', 'print exactly the SQL that would run and whether the gate is open, and change nothing')
      .addOption(stageOption())
      .option(
        '--force',
        'run although the gate is closed: the stage is not complete or verify has not passed (logged)',
      ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  flagshift contract users-username --dry-run\n  flagshift contract users-username\n  flagshift contract users-username --stage complete   # stage flag kept in another flag system',
    )
    .action((name: string, options: ContractCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runContract(ctx, name, options)),
    );
}
