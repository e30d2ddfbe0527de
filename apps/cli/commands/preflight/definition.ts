/** `flagshift preflight`: its arguments, options and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import { integer } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { PreflightCommandOptions } from './run.js';

/** Adds `flagshift preflight <migration>` to `program`. */
export function preflightCommand(program: Command, execute: Execute): Command {
  return program
    .command('preflight')
    .summary('row estimate, backfill time, dangers; before expand')
    .description(
      'check a migration before expand and backfill: row estimate, backfill time from a timed sample batch (rolled back), and warnings: no primary key, long transactions or locks on the table, a missing index; exits 1 on an error',
    )
    .argument('<migration>', 'name of the migration')
    .option('--no-sample-batch', 'skip the timed sample batch (it takes row locks briefly, then rolls back)')
    .option(
      '--sample-batch-size <rows>',
      'rows in the timed sample batch (default: 1000)',
      integer('--sample-batch-size', 1, 1_000_000),
    )
    .addHelpText('after', '\nExample:\n  flagshift preflight users-username')
    .action((name: string, options: PreflightCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runPreflight(ctx, name, options)),
    );
}
