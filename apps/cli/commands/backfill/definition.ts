/** `flagshift backfill`: its arguments, options and help. The runner loads when the command runs. */
import type { Command } from 'commander';
import { DEFAULT_TARGET_BATCH_MS } from '../../../../src/internal.js';
import { integer, pauseRatioArg, stageOption } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { BackfillCommandOptions } from './run.js';

/** Adds `flagshift backfill <migration>` to `program`. */
export function backfillCommand(program: Command, execute: Execute): Command {
  return program
    .command('backfill')
    .summary('copy old into new in batches; resumable, shareable')
    .description(
      'fill the new columns from the old in keyset batches, for rows no dual write touched yet; resumable after any interruption, and shareable between workers',
    )
    .argument('<migration>', 'name of the migration')
    .option(
      '--batch-size <rows>',
      'rows in the first batch; later batches adapt to --target-ms (default: 1000)',
      integer('--batch-size', 1, 1_000_000),
    )
    .option(
      '--target-ms <ms>',
      `batch duration the batch size adapts towards; a batch holds its rows' locks until it commits (default: ${DEFAULT_TARGET_BATCH_MS})`,
      integer('--target-ms', 1, 600_000),
    )
    .option(
      '--pause-ratio <r>',
      'a fixed pause after each batch, this multiple of its duration, instead of the adaptive one (0: back to back; default: none, the pause adapts: up to 1x a batch while the server is contended, none while it is idle)',
      pauseRatioArg,
    )
    .option(
      '--delay-ms <ms>',
      'a fixed pause after each batch, added to the pause, to go easy on a busy primary (default: 0)',
      integer('--delay-ms', 0, 600_000),
    )
    .option(
      '--lock-timeout-ms <ms>',
      'lock_timeout of each batch; a batch that times out is retried smaller (default: 1000)',
      integer('--lock-timeout-ms', 1, 600_000),
    )
    .option(
      '--replica <url>',
      'a replica to yield to: no batch runs while its replay is more than --max-replica-lag-ms behind (repeat for more)',
      (url: string, previous: string[] = []) => [...previous, url],
    )
    .option(
      '--max-replica-lag-ms <ms>',
      "pause while a replica's replay is further behind, read on each --replica and from the primary's view of its standbys (0: never; default: 1000)",
      integer('--max-replica-lag-ms', 0, 3_600_000),
    )
    .option('--no-standbys', "don't read the lag of the primary's streaming standbys (pg_stat_replication)")
    .option(
      '--max-transaction-age-ms <ms>',
      'pause while a transaction on the primary has been open longer: vacuum cannot clean up behind the backfill meanwhile (0: never; default: 300000)',
      integer('--max-transaction-age-ms', 0, 86_400_000),
    )
    .option(
      '--max-lock-wait-ms <ms>',
      'pause while a session has waited longer on a lock of the table or one of its rows (0: never; default: 500)',
      integer('--max-lock-wait-ms', 0, 3_600_000),
    )
    .option(
      '--health-check-ms <ms>',
      "how often the database's health is read between batches, and while paused for it (default: 500)",
      integer('--health-check-ms', 1, 600_000),
    )
    .option(
      '-w, --workers <n>',
      'workers in this process, each batch on its own connection; run the command on more hosts to add more (default: 1)',
      integer('--workers', 1, 64),
    )
    .option('--restart', 'discard the progress of an unfinished pass and start over (the data is kept)')
    .option('--no-preflight', 'skip the pre-flight checks printed before the backfill')
    .addOption(stageOption())
    .option(
      '--force',
      'run at stage complete, where the new columns are authoritative and a backfill from the old ones could overwrite them',
    )
    .addHelpText(
      'after',
      '\nA progress bar (rows, rate, ETA) is shown when stderr is a terminal, plain lines otherwise.\nThe backfill yields to the health of the database, and says so: "paused: replica lag 1.8 s > 1 s".\nCtrl-C stops after the current batch; running the command again resumes.\n\nExamples:\n  flagshift backfill users-username\n  flagshift backfill users-username --workers 4 --target-ms 100 --delay-ms 20\n  flagshift backfill users-username --pause-ratio 0   # batches back to back even on a busy server\n  flagshift backfill users-username --replica postgres://replica-1/app --max-replica-lag-ms 500',
    )
    .action((name: string, options: BackfillCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runBackfill(ctx, name, options)),
    );
}
