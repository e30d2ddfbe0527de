/**
 * The `flagshift` command line: commands, options and help. Each action runs through
 * `execute`, which opens a {@link CliContext} for it and closes it afterwards.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { STAGES, type Stage } from '../../src/index.js';
import type { CliContext, CliStreams, GlobalOptions } from './cli-context.js';
import { packageVersion } from './package-version.js';

/**
 * The command modules, loaded when their command runs: `--help` and wrong input never pay
 * for loading the lifecycle, node-postgres and zod schemas.
 */
const commands = {
  plan: () => import('./commands/plan-command.js'),
  preflight: () => import('./commands/preflight-command.js'),
  expand: () => import('./commands/expand-command.js'),
  backfill: () => import('./commands/backfill-command.js'),
  verify: () => import('./commands/verify-command.js'),
  status: () => import('./commands/status-command.js'),
  contract: () => import('./commands/contract-command.js'),
  flags: () => import('./commands/flags-commands.js'),
  dashboard: () => import('./commands/dashboard-command.js'),
};

/** Runs one command's body with a context; returns the exit code. */
export type Execute = (command: Command, body: (ctx: CliContext) => Promise<number>) => Promise<void>;

function integer(name: string, min: number, max: number) {
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
function percentArg(value: string): number {
  const n = decimal(value.trim().replace(/%$/, ''));
  if (Number.isNaN(n) || n < 0 || n > 100) {
    throw new InvalidArgumentError('the read percentage must be a decimal number from 0 to 100, such as 10 or 12.5.');
  }
  return n;
}

/** `--pause-ratio`: the pause after each batch as a multiple of its duration, 0 to 100. */
function pauseRatioArg(value: string): number {
  const n = decimal(value);
  if (Number.isNaN(n) || n > 100) {
    throw new InvalidArgumentError('the pause ratio must be a decimal number from 0 to 100, such as 0.3 or 1.');
  }
  return n;
}

function sampleArg(value: string): number {
  const text = value.trim();
  const n = text.endsWith('%') ? decimal(text.slice(0, -1)) / 100 : decimal(text);
  if (Number.isNaN(n) || n <= 0 || n > 1) {
    throw new InvalidArgumentError('the sample must be a fraction in (0, 1] such as 0.1, or a percentage such as 10%.');
  }
  return n;
}

function percentsArg(value: string): number[] {
  const list = value.split(',').map(decimal);
  const increasing = list.every((n, i) => Number.isFinite(n) && n > 0 && n <= 100 && (i === 0 || n > list[i - 1]!));
  if (list.length === 0 || !increasing) {
    throw new InvalidArgumentError(
      'the ramp must be increasing percentages in (0, 100], comma-separated, e.g. 1,10,50,100.',
    );
  }
  return list;
}

/** The global options as a command sees them. */
export function globalOptionsOf(command: Command): GlobalOptions {
  const all = command.optsWithGlobals<{
    migrations?: string;
    databaseUrl?: string;
    stateSchema: string;
    flagsSchema: string;
    flagsTable: string;
    verbose?: boolean;
    json?: boolean;
  }>();
  return {
    ...(all.migrations === undefined ? {} : { migrations: all.migrations }),
    ...(all.databaseUrl === undefined ? {} : { databaseUrl: all.databaseUrl }),
    stateSchema: all.stateSchema,
    flagsSchema: all.flagsSchema,
    flagsTable: all.flagsTable,
    verbose: all.verbose === true,
    json: all.json === true,
  };
}

function ddlOptions(command: Command): Command {
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

const MAIN_HELP = `
The lifecycle of a migration, in order:
  flagshift plan users-username                       every step, its SQL and its rollback
  flagshift preflight users-username                  row estimate, backfill time, warnings
  flagshift expand users-username --dry-run           the SQL expand would run; changes nothing
  flagshift expand users-username                     add new columns, indexes, sync triggers
  flagshift flags set users-username --stage dualwrite
  flagshift backfill users-username --workers 4       copy old into new, resumable
  flagshift verify users-username                     compare every row; exit 1 on a mismatch
  flagshift flags set users-username --stage live --percent 10
  flagshift flags kill users-username                 reads back to old at once
  flagshift status                                    where every migration stands
  flagshift contract users-username                   drop the old columns (after verify)

The migrations module exports your migrations (from defineMigration) as its default
export (a list) or as named exports. A .ts module is loaded through tsx when it is
installed. Inside the flagshift repository run the CLI as: npm run flagshift -- <args>

Exit codes: 0 success, 1 failure (a verification mismatch included), 2 bad input,
130 interrupted (a backfill resumes where it stopped).`;

/** Builds the program. `execute` runs each command's body. */
export function buildProgram(execute: Execute, streams: CliStreams): Command {
  const program = new Command('flagshift')
    .description(
      'Zero-downtime PostgreSQL schema changes by expand-contract: plan, expand, backfill, verify and contract migrations, and move their stage flags.',
    )
    .configureOutput({
      writeOut: (text) => streams.stdout.write(text),
      writeErr: (text) => streams.stderr.write(text),
      outputError: (text, write) => write(`flagshift: ${text}`),
    })
    .exitOverride()
    .showSuggestionAfterError()
    .configureHelp({ showGlobalOptions: true })
    .version(packageVersion(), '-V, --version', 'print the version of flagshift')
    // Our own help command (below) also takes a subcommand: help flags set.
    .helpCommand(false)
    .option('-m, --migrations <module>', 'migrations module (default: ./flagshift.config.ts, .mts, .js or .mjs)')
    .addOption(
      new Option('-d, --database-url <url>', 'PostgreSQL connection string (postgres://user:pass@host:5432/db)').env(
        'DATABASE_URL',
      ),
    )
    .option('--state-schema <schema>', "schema of flagshift's state tables", 'flagshift')
    .option('--flags-schema <schema>', 'schema of the flags table', 'flagshift')
    .option('--flags-table <table>', 'name of the flags table', 'flags')
    .option('--json', 'print results as JSON')
    .option('-v, --verbose', 'print lifecycle events, and stack traces of errors')
    .addHelpText('after', MAIN_HELP);

  program
    .command('plan')
    .summary('every phase of a migration: SQL, flag changes, rollbacks')
    .description(
      'print every phase of a migration in order: the exact SQL or flag change of each step, and its rollback',
    )
    .argument('<migration>', 'name of the migration')
    .option('--percents <list>', 'read percentages of the live ramp (default: 1,10,50,100)', percentsArg)
    .addHelpText('after', '\nExample:\n  flagshift plan users-username --percents 5,25,100')
    .action((name: string, options: { percents?: number[] }, command: Command) =>
      execute(command, async (ctx) => (await commands.plan()).runPlan(ctx, name, options)),
    );

  ddlOptions(
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
    .action((name: string, options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.expand()).runExpand(ctx, name, options)),
    );

  program
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
      "batch duration the batch size adapts towards; a batch holds its rows' locks until it commits (default: 25)",
      integer('--target-ms', 1, 600_000),
    )
    .option(
      '--pause-ratio <r>',
      "pause after each batch for this multiple of its duration, leaving the server's core to the application (0: back to back; default: 0.3)",
      pauseRatioArg,
    )
    .option(
      '--delay-ms <ms>',
      'a fixed pause after each batch, added to --pause-ratio, to go easy on a busy primary (default: 0)',
      integer('--delay-ms', 0, 600_000),
    )
    .option(
      '--lock-timeout-ms <ms>',
      'lock_timeout of each batch; a batch that times out is retried smaller (default: 1000)',
      integer('--lock-timeout-ms', 1, 600_000),
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
      '\nA progress bar (rows, rate, ETA) is shown when stderr is a terminal, plain lines otherwise.\nCtrl-C stops after the current batch; running the command again resumes.\n\nExamples:\n  flagshift backfill users-username\n  flagshift backfill users-username --workers 4 --target-ms 100 --delay-ms 20\n  flagshift backfill users-username --pause-ratio 0   # batches back to back, fastest',
    )
    .action((name: string, options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.backfill()).runBackfill(ctx, name, options)),
    );

  program
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
    .action((name: string, options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.preflight()).runPreflight(ctx, name, options)),
    );

  program
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
    .action((name: string, options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.verify()).runVerify(ctx, name, options)),
    );

  program
    .command('status')
    .summary('where each migration stands')
    .description(
      'show where migrations stand: stage and read percentage, expand, backfill progress, last verification, contract gate and shadow-read mismatches',
    )
    .argument('[migration]', 'name of one migration (default: all of them)')
    .addHelpText('after', '\nExamples:\n  flagshift status\n  flagshift status users-username --json')
    .action((name: string | undefined, _options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.status()).runStatus(ctx, name)),
    );

  ddlOptions(
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
    .action((name: string, options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.contract()).runContract(ctx, name, options)),
    );

  program
    .command('dashboard')
    .summary('a local web page: stages, mismatches, backfill; ramp and kill')
    .description(
      'serve a local page showing, per migration, stage and read percentage, mismatch rate over time, recent mismatch samples, latency per side, backfill progress and the last verification; with the postgres flag provider it offers ramp and kill controls',
    )
    .option('--port <port>', 'TCP port (default: 4580; 0 picks a free one)', integer('--port', 0, 65_535))
    .option(
      '--host <address>',
      'address to listen on (default: 127.0.0.1); off loopback, put TLS in front or use an SSH tunnel',
    )
    .option(
      '--allowed-host <name>',
      'another host name the page is reached by, as name or name:port (repeatable); other names are refused, against DNS rebinding; required with --host 0.0.0.0',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--read-only', 'serve no ramp or kill controls at all, and need no token')
    .addHelpText(
      'after',
      '\nChanges need the dashboard token: set FLAGSHIFT_DASHBOARD_TOKEN, or copy the one printed at start.\n' +
        '\nExamples:\n  flagshift dashboard\n  flagshift dashboard --port 0 --read-only\n' +
        '  FLAGSHIFT_DASHBOARD_TOKEN=$(openssl rand -base64 32) flagshift dashboard --host 10.0.0.5 --allowed-host dash.internal',
    )
    .action((options: object, command: Command) =>
      execute(command, async (ctx) => (await commands.dashboard()).runDashboard(ctx, options)),
    );

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
      execute(command, async (ctx) => (await commands.flags()).runFlagsGet(ctx, name)),
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
      'make a refused move anyway (logged): a stage whose columns expand has not added or contract dropped, reading new before the backfill finished, or leaving complete for a stage that reads old',
    )
    .addHelpText(
      'after',
      `\nStages, in order: ${STAGES.join(', ')}.\n\nExamples:\n  flagshift flags set users-username --stage dualwrite\n  flagshift flags set users-username --stage live --percent 10 --reason "canary fine"`,
    )
    .action(
      (
        name: string,
        options: { stage?: Stage; percent?: number; reason?: string; force?: boolean },
        command: Command,
      ) => {
        if (options.stage === undefined && options.percent === undefined) {
          command.error('error: give --stage <stage> and/or --percent <p>', {
            exitCode: 2,
            code: 'flagshift.nothingToSet',
          });
        }
        return execute(command, async (ctx) => (await commands.flags()).runFlagsSet(ctx, name, options));
      },
    );

  flags
    .command('kill')
    .summary('reads back to old at once; dual writes go on')
    .description(
      'the kill switch: send reads back to the old columns at once (shadow, live and rampdown become dualwrite, read percentage 0); dual writes continue, so nothing drifts',
    )
    .argument('<migration>', 'name of the migration')
    .option('--reason <text>', 'why, recorded in the event log')
    .addHelpText('after', '\nExample:\n  flagshift flags kill users-username --reason "mismatches in live"')
    .action((name: string, options: { reason?: string }, command: Command) =>
      execute(command, async (ctx) => (await commands.flags()).runFlagsKill(ctx, name, options)),
    );

  program
    .command('help')
    .description('display help for a command, or a subcommand of it (help flags set)')
    .argument('[command...]', 'the command, and its subcommand')
    .action((names: string[]) => {
      let target: Command = program;
      for (const [i, name] of names.entries()) {
        const next = target.commands.find((command) => command.name() === name || command.aliases().includes(name));
        if (next === undefined) {
          target.error(`error: unknown command '${names.slice(0, i + 1).join(' ')}'`, {
            exitCode: 2,
            code: 'commander.unknownCommand',
          });
        }
        target = next;
      }
      target.help();
    });

  return program;
}

/** `--stage`, for commands that check the stage, when the stage flag lives outside the flags table. */
function stageOption(): Option {
  return new Option(
    '--stage <stage>',
    'the stage every application is at, when the stage flag is kept in another flag system (not in the flags table)',
  ).choices(STAGES);
}
