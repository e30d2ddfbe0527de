/**
 * The `flagshift` command line: the global options, the main help and the list of
 * commands. Each command is defined in its own folder under `commands/`, next to its
 * runner; each action runs through `execute`, which opens a {@link CliContext} for it and
 * closes it afterwards.
 */
import { Command, Option } from 'commander';
import { DEFAULT_FLAG_TABLE } from '../../adapters/postgres-flags/flag-table.js';
import { DEFAULT_STATE_SCHEMA } from '../../src/lifecycle/index.js';
import type { CliStreams, GlobalOptions } from './cli-context.js';
import { backfillCommand } from './commands/backfill/definition.js';
import { contractCommand } from './commands/contract/definition.js';
import { dashboardCommand } from './commands/dashboard/definition.js';
import type { DefineCommand, Execute } from './commands/define-command.js';
import { expandCommand } from './commands/expand/definition.js';
import { flagsCommand } from './commands/flags/definition.js';
import { fleetCommand } from './commands/fleet/definition.js';
import { planCommand } from './commands/plan/definition.js';
import { preflightCommand } from './commands/preflight/definition.js';
import { statusCommand } from './commands/status/definition.js';
import { verifyCommand } from './commands/verify/definition.js';
import { packageVersion } from './package-version.js';

/**
 * Every command, in the order the help lists them. A definition loads light modules only;
 * its runner (node-postgres, the adapters, the dashboard server, the lifecycle's steps) is
 * imported when the command runs, so `--help` and wrong input don't pay for loading them.
 */
const COMMANDS: readonly DefineCommand[] = [
  planCommand,
  expandCommand,
  backfillCommand,
  preflightCommand,
  verifyCommand,
  statusCommand,
  contractCommand,
  dashboardCommand,
  flagsCommand,
  fleetCommand,
];

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
  // Commander reads DATABASE_URL from process.env; the run's own environment is the one that
  // counts (CliContext falls back to it), so a run embedded in another process reads only that.
  const fromProcessEnv = command.getOptionValueSourceWithGlobals('databaseUrl') === 'env';
  return {
    ...(all.migrations === undefined ? {} : { migrations: all.migrations }),
    ...(all.databaseUrl === undefined || fromProcessEnv ? {} : { databaseUrl: all.databaseUrl }),
    stateSchema: all.stateSchema,
    flagsSchema: all.flagsSchema,
    flagsTable: all.flagsTable,
    verbose: all.verbose === true,
    json: all.json === true,
  };
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
    .option('--state-schema <schema>', "schema of flagshift's state tables", DEFAULT_STATE_SCHEMA)
    .option('--flags-schema <schema>', 'schema of the flags table', DEFAULT_FLAG_TABLE.schema)
    .option('--flags-table <table>', 'name of the flags table', DEFAULT_FLAG_TABLE.table)
    .option('--json', 'print results as JSON')
    .option('-v, --verbose', 'print lifecycle events, and stack traces of errors')
    .addHelpText('after', MAIN_HELP);

  for (const define of COMMANDS) define(program, execute);

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
