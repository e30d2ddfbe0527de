/** `flagshift expand`: its arguments, options and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import { ddlOptions } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { ExpandCommandOptions } from './run.js';

/** Adds `flagshift expand <migration>` to `program`. */
export function expandCommand(program: Command, execute: Execute): Command {
  return ddlOptions(
    program
      .command('expand')
      .summary('add the new columns, indexes and sync triggers')
      .description(
        'add the new columns (nullable, or with a constant default), indexes (CREATE INDEX CONCURRENTLY) and sync triggers; each statement under a short lock_timeout, retried with backoff',
      )
      .argument('<migration>', 'name of the migration')
      .option('--dry-run', 'print exactly the SQL that would run, in order, and change nothing')
      .option('--no-preflight', 'skip the pre-flight checks printed before expanding'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  flagshift expand users-username --dry-run > expand.sql\n  flagshift expand users-username --lock-timeout-ms 200',
    )
    .action((name: string, options: ExpandCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runExpand(ctx, name, options)),
    );
}
