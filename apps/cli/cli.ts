/**
 * The `flagshift` command-line tool: the composition root that wires the migrations
 * module, node-postgres, the lifecycle steps and the PostgreSQL flag store together.
 *
 * Published as `bin/flagshift.js`, which runs the built `dist/apps/cli/cli.js`. Inside the
 * repository run it from the sources: `npm run flagshift -- <args>`.
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
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
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

/**
 * A reader that went away (`flagshift plan x | head -2`) ends the run quietly, with the
 * code SIGPIPE gives other command-line tools (141), instead of an unhandled EPIPE stack
 * trace: not 0, since what was cut off (a failing verification, a backfill) may not have
 * succeeded; an interrupted backfill resumes where it stopped.
 */
function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(ExitCode.BrokenPipe);
    throw error;
  });
}

exitQuietlyOnBrokenPipe(process.stdout);
exitQuietlyOnBrokenPipe(process.stderr);
process.exitCode = await main(process.argv.slice(2));
