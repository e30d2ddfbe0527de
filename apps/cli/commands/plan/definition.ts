/** `flagshift plan`: its arguments, options and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import { percentsArg } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { PlanCommandOptions } from './run.js';

/** Adds `flagshift plan <migration>` to `program`. */
export function planCommand(program: Command, execute: Execute): Command {
  return program
    .command('plan')
    .summary('every phase of a migration: SQL, flag changes, rollbacks')
    .description(
      'print every phase of a migration in order: the exact SQL or flag change of each step, and its rollback',
    )
    .argument('<migration>', 'name of the migration')
    .option('--percents <list>', 'read percentages of the live ramp (default: 1,10,50,100)', percentsArg)
    .addHelpText('after', '\nExample:\n  flagshift plan users-username --percents 5,25,100')
    .action((name: string, options: PlanCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runPlan(ctx, name, options)),
    );
}
