/**
 * `flagshift fleet run|status`: one migration across shards (databases) and tenants
 * (schemas). Their arguments, options and help; the runner loads when a subcommand runs.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { integer, pauseRatioArg } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { FleetCommandOptions } from './run.js';

/** `--shard name=url`, repeatable: a member that is a database of its own. */
function shardArg(value: string, previous: readonly string[] = []): string[] {
  if (!/^[^=\s]+=postgres(ql)?:\/\/\S+$/.test(value)) {
    throw new InvalidArgumentError('a shard is name=postgres://user:password@host:5432/database.');
  }
  return [...previous, value];
}

/** `--tenant name[=schema]`, repeatable: a member that is a schema of the --database-url database. */
function tenantArg(value: string, previous: readonly string[] = []): string[] {
  if (!/^[^=\s]+(=[A-Za-z_][A-Za-z0-9_]*)?$/.test(value)) {
    throw new InvalidArgumentError('a tenant is name or name=schema (a plain identifier).');
  }
  return [...previous, value];
}

/** The member options both subcommands take. */
function memberOptions(command: Command): Command {
  return command
    .argument('<migration>', 'name of the migration')
    .option('--shard <name=url>', 'a member that is a database of its own (repeatable)', shardArg)
    .option(
      '--tenant <name[=schema]>',
      'a member that is a schema of the --database-url database; the schema defaults to the name (repeatable)',
      tenantArg,
    )
    .option('--canary <name>', 'the member that goes first, alone (default: the first member)')
    .option('--concurrency <n>', 'members run at once after the canary (default: 4)', integer('--concurrency', 1, 256));
}

const HELP = `
Members are shards (--shard name=url, a database each, state in its own --state-schema)
and tenants (--tenant name=schema, schemas of the --database-url database, state in
flagshift_<schema>). Shards come first, in the order given, then tenants. A member's
progress lives in its own state tables: a run that stopped or crashed resumes where each
member is. Contract (--through contract) runs on a member once the stage flag in that
member's database flags table is complete; the others wait.

Exit codes: 0 every member through, 1 a member failed or was skipped (see the status).

Examples:
  flagshift fleet run users-username --tenant acme --tenant globex --canary acme
  flagshift fleet run users-username --shard eu=postgres://db-eu/app --shard us=postgres://db-us/app --concurrency 2
  flagshift fleet status users-username --tenant acme --tenant globex`;

/** Adds `flagshift fleet` and its subcommands to `program`. */
export function fleetCommand(program: Command, execute: Execute): Command {
  const fleet = program
    .command('fleet')
    .summary('run one migration across shards and tenant schemas')
    .description(
      'run one migration across many databases (shards) and schemas (tenants): a canary first, then the rest with bounded parallelism; each member expands, backfills, verifies and, once its stage is complete, contracts',
    );

  memberOptions(
    fleet
      .command('run')
      .summary('expand, backfill, verify (and contract) every member')
      .description(
        'run every member from where it is through --through: the canary alone first; a member that fails stops only itself; a failing canary stops the rest',
      ),
  )
    .addOption(
      new Option('--through <step>', 'the last step to run (default: verify)').choices([
        'expand',
        'backfill',
        'verify',
        'contract',
      ]),
    )
    .option(
      '--coordinator <name>',
      'this coordinator: a rerun under the same name takes its backfill ranges back at once',
    )
    .option(
      '--batch-size <rows>',
      'rows in the first backfill batch (default: 1000)',
      integer('--batch-size', 1, 1_000_000),
    )
    .option(
      '--pause-ratio <r>',
      'a fixed pause after each backfill batch, as a multiple of its duration (default: none, the pause adapts to contention)',
      pauseRatioArg,
    )
    .addHelpText('after', HELP)
    .action((name: string, options: FleetCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runFleetCommand(ctx, name, options)),
    );

  memberOptions(
    fleet
      .command('status')
      .summary('which member is at which step, and why one failed')
      .description("every member's steps done, its next step and state, read off the member itself"),
  )
    .addHelpText('after', HELP)
    .action((name: string, options: FleetCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runFleetStatus(ctx, name, options)),
    );

  return fleet;
}
