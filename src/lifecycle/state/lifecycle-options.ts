/**
 * The options every lifecycle step accepts (where its state lives, who hears its events),
 * their zod shape and what each must be, for the steps that extend them.
 */
import { z } from 'zod';
import type { OptionExpectations } from '../../kernel/index.js';
import { identifierProblem } from '../../model/index.js';

/** Options every lifecycle step accepts. */
export interface LifecycleOptions {
  /**
   * Schema of flagshift's state tables (events, verifications, backfill checkpoints and
   * ranges). Created when missing.
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
  /**
   * Called with each lifecycle event (a batch done, a retry, a verification result, ...).
   * Exceptions it throws are ignored: reporting never stops a migration step.
   * @default no listener
   */
  readonly onEvent?: (event: LifecycleEvent) => void;
}

/** One thing a lifecycle step did or saw, for logs and progress displays. */
export type LifecycleEvent = { type: string; migration: string; message: string; [k: string]: unknown };

/** The zod schema of {@link LifecycleOptions}, for steps that extend it. */
export const lifecycleOptionsShape = {
  stateSchema: z
    .string()
    .refine((value) => identifierProblem(value) === undefined, 'must be a plain identifier (letters, digits, _)')
    .optional(),
  onEvent: z.function().optional(),
};

/** What each of {@link LifecycleOptions} must be, for `parseOptions`. */
export const lifecycleOptionExpectations = {
  stateSchema: 'a plain identifier (letters, digits, _)',
  onEvent: 'a function',
} as const satisfies OptionExpectations;

/** Calls `options.onEvent`, never letting a listener's failure reach the step. */
export function emitEvent(options: LifecycleOptions | undefined, event: LifecycleEvent): void {
  try {
    options?.onEvent?.(event);
  } catch {
    // A broken listener must not stop a backfill half-way.
  }
}
