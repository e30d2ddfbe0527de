import { existingRelations } from '../../../../src/internal.js';
import { createPostgresFlagControl, startDashboard } from '../../../dashboard/index.js';
import type { CliContext } from '../../cli-context.js';
import { ExitCode } from '../../cli-error.js';

/** Options of `flagshift dashboard`. */
export interface DashboardCommandOptions {
  readonly port?: number;
  readonly host?: string;
  readonly readOnly?: boolean;
}

/**
 * `flagshift dashboard`: serves the dashboard until SIGINT/SIGTERM. Ramp and kill controls
 * are offered when the PostgreSQL flags table exists (the postgres flag provider is in
 * use) and `--read-only` is not given.
 */
export async function runDashboard(ctx: CliContext, options: DashboardCommandOptions): Promise<number> {
  const migrations = [...(await ctx.migrations()).values()];
  const driver = await ctx.driver();
  const { flagsSchema, flagsTable, stateSchema } = ctx.options;
  const flagTable = `"${flagsSchema}"."${flagsTable}"`;
  const controls = options.readOnly !== true && (await existingRelations(driver, [flagTable])).has(flagTable);
  const dashboard = await startDashboard({
    driver,
    migrations,
    stateSchema,
    flagTable: { schema: flagsSchema, table: flagsTable },
    port: options.port ?? 4580,
    host: options.host ?? '127.0.0.1',
    ...(controls
      ? {
          flags: createPostgresFlagControl(driver, {
            schema: flagsSchema,
            table: flagsTable,
            stateSchema,
            actor: `${ctx.actor} via dashboard`,
          }),
        }
      : {}),
  });
  ctx.note(
    `flagshift dashboard at ${dashboard.url} (${controls ? 'ramp and kill controls on' : 'read-only'}); Ctrl-C to stop`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await dashboard.close();
  return ExitCode.Ok;
}
