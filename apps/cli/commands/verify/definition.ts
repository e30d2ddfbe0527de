/** `flagshift verify`: its arguments, options and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import { integer, sampleArg } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { VerifyCommandOptions } from './run.js';

/** Adds `flagshift verify <migration>` to `program`. */
export function verifyCommand(program: Command, execute: Execute): Command {
  return program
    .command('verify')
    .summary('compare new with forward(old) on every row')
    .description(
      "compare every row's new columns with forward(old) in the database, record the result for the contract gate, and exit 1 on any mismatch, missing row, or NULL in a column contract makes NOT NULL",
    )
    .argument('<migration>', 'name of the migration')
    .option('--sample <fraction>', 'compare a random sample of rows: a fraction such as 0.1, or 10%', sampleArg)
    .option('--chunk-size <rows>', 'rows per statement (default: 5000)', integer('--chunk-size', 1, 1_000_000))
    .option('--examples <n>', 'failing rows to show (default: 10)', integer('--examples', 0, 10_000))
    .option('--raw-values', 'show the raw keys and values of failing rows instead of digests')
    .addHelpText(
      'after',
      '\nExamples:\n  flagshift verify users-username\n  flagshift verify users-username --sample 5%',
    )
    .action((name: string, options: VerifyCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runVerify(ctx, name, options)),
    );
}
