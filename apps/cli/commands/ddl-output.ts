/**
 * Printing what expand and contract planned or did: a dry run prints exactly the SQL that
 * would run, step by step, as a psql-ready script; a real run lists each step with its
 * attempts and duration.
 */
import { type DdlOptions, type DdlReport, ddlStatements, formatSql } from '../../../src/lifecycle/index.js';
import type { CliContext } from '../cli-context.js';

/** Options of the commands that run DDL, as commander parses them. */
export interface DdlCommandOptions {
  readonly dryRun?: boolean;
  readonly lockTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
  readonly maxAttempts?: number;
}

/** The {@link DdlOptions} the command line asked for. */
export function ddlOptionsFrom(ctx: CliContext, options: DdlCommandOptions): DdlOptions {
  const onEvent = ctx.onEvent;
  return {
    stateSchema: ctx.options.stateSchema,
    ...(options.dryRun === true ? { dryRun: true } : {}),
    ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
    ...(options.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: options.statementTimeoutMs }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(onEvent === undefined ? {} : { onEvent }),
  };
}

/** Prints a DDL report: the script of a dry run, or what ran; `json` adds fields to the `--json` output. */
export function printDdlReport(
  ctx: CliContext,
  what: 'expand' | 'contract',
  migration: string,
  report: DdlReport,
  options: DdlOptions,
  json: Record<string, unknown> = {},
): void {
  if (ctx.options.json) {
    ctx.printJson({
      migration,
      phase: what,
      ...json,
      dryRun: report.dryRun,
      sql: report.sql,
      steps: report.steps.map((step) => ({
        description: step.step.description,
        sql: step.step.sql,
        transactional: step.step.transactional,
        rollback: step.step.rollback ?? null,
        attempts: step.attempts,
        durationMs: Math.round(step.durationMs),
      })),
    });
    return;
  }
  if (report.steps.length === 0) {
    ctx.print(`-- ${what} of migration "${migration}": nothing to do`);
    return;
  }
  if (report.dryRun) {
    ctx.print(`-- ${what} of migration "${migration}": dry run, nothing was changed.`);
    ctx.print(`-- The statements below are exactly what \`flagshift ${what} ${migration}\` runs, in order.`);
    report.steps.forEach((step, index) => {
      ctx.print();
      ctx.print(`-- ${index + 1}. ${step.step.description}`);
      ctx.print(formatSql(ddlStatements(step.step, options)));
    });
    return;
  }
  ctx.print(`${what} of migration "${migration}":`);
  report.steps.forEach((step, index) => {
    const attempts = step.attempts === 1 ? '1 attempt' : `${step.attempts} attempts`;
    ctx.print(`  ${index + 1}. ${step.step.description} (${attempts}, ${Math.round(step.durationMs)} ms)`);
  });
}
