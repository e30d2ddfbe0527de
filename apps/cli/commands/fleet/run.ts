import { getMigrationFlags } from '../../../../adapters/postgres-flags/migration-flags.js';
import type { FlagContext, FlagSource, Migration } from '../../../../src/index.js';
import {
  type FleetMember,
  type FleetMemberStatus,
  type FleetStatus,
  type FleetStatusOptions,
  type FleetStep,
  fleetStatus,
  runFleet,
} from '../../../../src/lifecycle/index.js';
import { type CliContext, redactUrl } from '../../cli-context.js';
import { CliError, ExitCode } from '../../cli-error.js';

/** Options of `flagshift fleet run` and `flagshift fleet status`. */
export interface FleetCommandOptions {
  readonly shard?: readonly string[];
  readonly tenant?: readonly string[];
  readonly canary?: string;
  readonly concurrency?: number;
  readonly through?: FleetStep;
  readonly coordinator?: string;
  readonly batchSize?: number;
  readonly pauseRatio?: number;
}

/** The members named on the command line, and how to close the shards' pools. */
interface Members {
  readonly members: FleetMember[];
  close(): Promise<void>;
}

/**
 * `flagshift fleet run <migration>`: the canary, then every other member, from where each
 * is through `--through`. Exit 1 when a member failed or was skipped.
 */
export function runFleetCommand(ctx: CliContext, name: string, options: FleetCommandOptions): Promise<number> {
  return withFleet(ctx, name, options, async (migration, fleet) => {
    const report = await runFleet(migration, {
      ...fleet,
      ...(options.through === undefined ? {} : { through: options.through }),
      ...(options.coordinator === undefined ? {} : { coordinator: options.coordinator }),
      backfill: {
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
        ...(options.pauseRatio === undefined ? {} : { pauseRatio: options.pauseRatio }),
        ...(ctx.onEvent === undefined ? {} : { onEvent: ctx.onEvent }),
      },
      onProgress: (status) => ctx.note(`  ${status.member}: ${describeState(status)}`),
    });
    printStatus(ctx, report, { ok: report.ok });
    return report.ok ? ExitCode.Ok : ExitCode.Failure;
  });
}

/** `flagshift fleet status <migration>`: every member's steps done, next step and state, with each member's stage. */
export function runFleetStatus(ctx: CliContext, name: string, options: FleetCommandOptions): Promise<number> {
  return withFleet(ctx, name, options, async (migration, fleet) => {
    printStatus(ctx, await fleetStatus(migration, fleet), {});
    return ExitCode.Ok;
  });
}

/** Runs `body` with the migration and the fleet the command line names; closes the shards' pools after. */
async function withFleet(
  ctx: CliContext,
  name: string,
  options: FleetCommandOptions,
  body: (migration: Migration, fleet: FleetStatusOptions) => Promise<number>,
): Promise<number> {
  const migration = await ctx.migration(name);
  const opened = await openMembers(ctx, options);
  try {
    return await body(migration, {
      members: opened.members,
      ...(options.canary === undefined ? {} : { canary: options.canary }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      flags: memberFlagTables(ctx, migration, opened.members),
    });
  } finally {
    await opened.close();
  }
}

/** Shards over pools of their own (closed by `close`), tenants over the --database-url pool. */
async function openMembers(ctx: CliContext, options: FleetCommandOptions): Promise<Members> {
  const shards = options.shard ?? [];
  const tenants = options.tenant ?? [];
  if (shards.length + tenants.length === 0) {
    throw new CliError('a fleet needs members: give --shard name=url and/or --tenant name[=schema]');
  }
  const pools: { end(): Promise<void> }[] = [];
  const close = async () => {
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
  };
  const members: FleetMember[] = [];
  try {
    if (shards.length > 0) {
      const pg = (await import('pg')).default;
      const { createPgDriver } = await import('../../../../adapters/pg/index.js');
      for (const spec of shards) {
        const at = spec.indexOf('=');
        const url = spec.slice(at + 1);
        if (!URL.canParse(url))
          throw new CliError(`shard "${spec.slice(0, at)}": ${JSON.stringify(redactUrl(url))} is not a URL`);
        const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'flagshift-fleet' });
        pool.on('error', () => undefined);
        pools.push(pool);
        members.push({ name: spec.slice(0, at), driver: createPgDriver(pool), stateSchema: ctx.options.stateSchema });
      }
    }
    for (const spec of tenants) {
      const [tenant, schema] = spec.split('=') as [string, string | undefined];
      members.push({ name: tenant, driver: await ctx.driver(), schema: schema ?? tenant });
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { members, close };
}

/**
 * Each member's stage from the flags table of the member's own database: the member is
 * found by the context the fleet evaluates it with. Tenants of one database share its
 * flags table, so they share a stage; a stage per tenant needs a flag provider with
 * targeting rules (the API's `flags` option).
 */
function memberFlagTables(ctx: CliContext, migration: Migration, members: readonly FleetMember[]): FlagSource {
  const byName = new Map(members.map((member) => [member.name, member]));
  return {
    async resolve(_flagKey: string, _type, context: FlagContext) {
      const name = String(context['shard'] ?? context['tenant']);
      const member = byName.get(name);
      if (member === undefined) throw new Error(`no member "${name}"`);
      const flags = await getMigrationFlags(member.driver, migration, ctx.flagTable);
      if (flags.stage === undefined) {
        throw new Error(`not set in ${ctx.options.flagsSchema}.${ctx.options.flagsTable}`);
      }
      return flags.stage;
    },
  };
}

/** One member's state, steps and reason, for a line of progress or status. */
function describeState(status: FleetMemberStatus): string {
  const done = status.completed.length === 0 ? 'nothing done' : `${status.completed.join(', ')} done`;
  const next = status.next === undefined ? '' : `; next ${status.next}`;
  const stage = status.stage === undefined ? '' : `; stage ${status.stage}`;
  const rows =
    status.backfill !== undefined && !status.backfill.done
      ? `; backfill ${status.backfill.rowsDone} of ~${status.backfill.totalEstimate} rows`
      : '';
  const reason = status.reason === undefined ? '' : ` (${status.reason})`;
  return `${status.state}: ${done}${next}${stage}${rows}${reason}`;
}

function printStatus(ctx: CliContext, status: FleetStatus, extra: { readonly ok?: boolean }): void {
  if (ctx.options.json) {
    ctx.printJson({ ...status, ...extra });
    return;
  }
  ctx.print(`migration ${status.migration} across ${status.members.length} members (canary ${status.canary})`);
  const width = Math.max(...status.members.map((member) => member.member.length));
  for (const member of status.members) ctx.print(`  ${member.member.padEnd(width)}  ${describeState(member)}`);
}
