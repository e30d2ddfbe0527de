/**
 * Which of a migration's columns and sync triggers the database has, and whether it was
 * contracted: the core reads both off the catalog and the event log.
 */
import type { PgDriver } from '../../../adapters/pg/index.js';
import type { Migration } from '../../../src/index.js';
import { contractedAt } from '../../../src/internal.js';
import type { CliContext } from '../cli-context.js';

export { contractedAt, type SchemaState, schemaState } from '../../../src/internal.js';

/**
 * For a command with nothing to do once `migration` is contracted: says so (the line ends
 * with `consequence`, after "its old columns are gone") and returns true; else false.
 */
export async function reportIfContracted(
  ctx: CliContext,
  driver: PgDriver,
  migration: Migration,
  consequence: string,
): Promise<boolean> {
  const contracted = await contractedAt(driver, migration, ctx.options.stateSchema);
  if (contracted === undefined) return false;
  if (ctx.options.json) ctx.printJson({ migration: migration.name, contractedAt: contracted.toISOString() });
  else
    ctx.print(
      `migration "${migration.name}" is already contracted (at ${contracted.toISOString()}): its old columns are gone${consequence}`,
    );
  return true;
}
