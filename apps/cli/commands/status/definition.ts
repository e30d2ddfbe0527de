/** `flagshift status`: its arguments and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import type { Execute } from '../define-command.js';

/** Adds `flagshift status [migration]` to `program`. */
export function statusCommand(program: Command, execute: Execute): Command {
  return program
    .command('status')
    .summary('where each migration stands')
    .description(
      'show where migrations stand: stage and read percentage, expand, backfill progress, last verification, contract gate and shadow-read mismatches',
    )
    .argument('[migration]', 'name of one migration (default: all of them)')
    .addHelpText('after', '\nExamples:\n  flagshift status\n  flagshift status users-username --json')
    .action((name: string | undefined, _options: object, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runStatus(ctx, name)),
    );
}
