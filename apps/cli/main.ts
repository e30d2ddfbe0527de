/**
 * The `flagshift` command line as a function: `main(argv, streams, env, cwd)` runs one
 * command and returns its exit code. It reads no environment or working directory but the
 * ones it is given and closes what the command opened, so it can run many times in one
 * process (the CLI's tests do); only a second Ctrl-C during a backfill exits the process.
 */
import { CommanderError } from 'commander';
import { CliContext, type CliStreams } from './cli-context.js';
import { CliError, ExitCode, errorDetails, errorLine } from './cli-error.js';
import { buildProgram, globalOptionsOf } from './program.js';

/**
 * Runs the CLI on `argv` (the arguments after the program name) and returns the exit
 * code. Errors become one line on stderr (`flagshift: error: ...`), with the stack only
 * under `--verbose`.
 */
export async function main(
  argv: readonly string[],
  streams: CliStreams,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<number> {
  let exitCode: number = ExitCode.Ok;
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  const program = buildProgram(async (command, body) => {
    const options = globalOptionsOf(command);
    verbose = options.verbose;
    const ctx = new CliContext(options, streams, cwd, env);
    try {
      exitCode = await body(ctx);
    } finally {
      await ctx.close();
    }
  }, streams);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander printed its message (or the help) already.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.Ok;
      // `help` exits 0; help shown for a missing subcommand (`flagshift flags`) is bad input.
      if (error.code === 'commander.help' && error.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    streams.stderr.write(`flagshift: error: ${errorLine(error)}\n`);
    if (error instanceof CliError) for (const line of error.details) streams.stderr.write(`  ${line}\n`);
    if (verbose) streams.stderr.write(`${errorDetails(error)}\n`);
    return error instanceof CliError ? error.exitCode : ExitCode.Failure;
  }
}
