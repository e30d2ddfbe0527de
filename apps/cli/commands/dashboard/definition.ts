/** `flagshift dashboard`: its options and help. The runner, with the dashboard server, loads when the command runs. */
import type { Command } from 'commander';
import { integer } from '../arguments.js';
import type { Execute } from '../define-command.js';
import type { DashboardCommandOptions } from './run.js';

/** Adds `flagshift dashboard` to `program`. */
export function dashboardCommand(program: Command, execute: Execute): Command {
  return program
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
    .action((options: DashboardCommandOptions, command: Command) =>
      execute(command, async (ctx) => (await import('./run.js')).runDashboard(ctx, options)),
    );
}
