/**
 * What a command's definition is: a function that adds the command (its arguments,
 * options and help) to the program, and whose action hands its body to {@link Execute}.
 * A definition loads light modules only; its runner, with node-postgres, the adapters and
 * the lifecycle's steps, is imported when the command runs.
 */
import type { Command } from 'commander';
import type { CliContext } from '../cli-context.js';

/** Runs one command's body with a context; returns the exit code. */
export type Execute = (command: Command, body: (ctx: CliContext) => Promise<number>) => Promise<void>;

/** Adds one command to `program`; returns the command. */
export type DefineCommand = (program: Command, execute: Execute) => Command;
