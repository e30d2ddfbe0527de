import { ConfigurationError } from '../../../../src/index.js';
import { existingRelations } from '../../../../src/internal.js';
import { createPostgresFlagControl, startDashboard } from '../../../dashboard/index.js';
import type { CliContext } from '../../cli-context.js';
import { CliError, ExitCode } from '../../cli-error.js';

/** Where `flagshift dashboard` takes the dashboard token from, when it is not to make one. */
export const DASHBOARD_TOKEN_ENV = 'FLAGSHIFT_DASHBOARD_TOKEN';

/** Options of `flagshift dashboard`. */
export interface DashboardCommandOptions {
  readonly port?: number;
  readonly host?: string;
  readonly readOnly?: boolean;
  readonly allowedHost?: readonly string[];
}

/**
 * `flagshift dashboard`: serves the dashboard until SIGINT/SIGTERM. Ramp and kill controls
 * are offered when the PostgreSQL flags table exists (the postgres flag provider is in
 * use) and `--read-only` is not given. Their token comes from FLAGSHIFT_DASHBOARD_TOKEN,
 * or is generated and printed once, on stderr; there is no option for it, because a
 * command line is visible to every user of the machine (`ps`) and kept in shell history.
 */
export async function runDashboard(ctx: CliContext, options: DashboardCommandOptions): Promise<number> {
  const migrations = [...(await ctx.migrations()).values()];
  const driver = await ctx.driver();
  const { flagsSchema, flagsTable, stateSchema } = ctx.options;
  const flagTable = `"${flagsSchema}"."${flagsTable}"`;
  const readOnly = options.readOnly === true || !(await existingRelations(driver, [flagTable])).has(flagTable);
  const given = ctx.env[DASHBOARD_TOKEN_ENV] || undefined;
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  try {
    dashboard = await startDashboard({
      driver,
      migrations,
      stateSchema,
      flagTable: { schema: flagsSchema, table: flagsTable },
      port: options.port ?? 4580,
      host: options.host ?? '127.0.0.1',
      readOnly,
      ...(options.allowedHost === undefined ? {} : { allowedHosts: options.allowedHost }),
      ...(readOnly
        ? {}
        : {
            token: given,
            flags: createPostgresFlagControl(driver, {
              schema: flagsSchema,
              table: flagsTable,
              stateSchema,
              actor: `${ctx.actor} via dashboard`,
            }),
          }),
    });
  } catch (error) {
    if (error instanceof ConfigurationError && error.path === 'token') {
      throw new CliError(`${DASHBOARD_TOKEN_ENV} can't be the dashboard token: ${error.message}`, { cause: error });
    }
    if (error instanceof ConfigurationError && error.path.startsWith('allowedHosts')) {
      throw new CliError(error.message.replace(/option "allowedHosts(\.\d+)?"/, '--allowed-host'), { cause: error });
    }
    throw error;
  }
  ctx.note(
    `flagshift dashboard at ${dashboard.url} (${readOnly ? 'read-only' : 'ramp and kill controls on'}); Ctrl-C to stop`,
  );
  if (dashboard.token !== undefined) {
    ctx.note(
      given === undefined
        ? `dashboard token, to paste into the page once (shown only now; set ${DASHBOARD_TOKEN_ENV} to choose it): ${dashboard.token}`
        : `changes need the dashboard token from ${DASHBOARD_TOKEN_ENV}`,
    );
  }
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
