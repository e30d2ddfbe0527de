/**
 * The `flagshift` command-line tool: the composition root that wires the migrations
 * module, node-postgres, the lifecycle steps and the PostgreSQL flag store together. This
 * entry only binds {@link main} to the process: its arguments, streams, environment,
 * working directory and exit code.
 *
 * Published as `bin/flagshift.js`, which runs the built `dist/apps/cli/cli.js`. Inside the
 * repository run it from the sources: `npm run flagshift -- <args>`.
 */
import { ExitCode } from './cli-error.js';
import { main } from './main.js';

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
process.exitCode = await main(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr },
  process.env,
  process.cwd(),
);
