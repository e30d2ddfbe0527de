import type { PGlite } from '@electric-sql/pglite';
import { z } from 'zod';
import { ConfigurationError } from '../../src/index.js';
import { parseOptions } from '../../src/internal.js';
import { PgliteDriver } from './pglite-driver.js';

/** Options of {@link openPglite}. */
export interface OpenPgliteOptions {
  /**
   * Where PGlite keeps its files: a directory path in Node, `idb://name` in a browser.
   * @default undefined (in memory, gone when closed)
   */
  readonly dataDir?: string;
}

/** A PGlite database opened by {@link openPglite}, with its driver. */
export interface OpenedPglite {
  /** The PGlite instance, for anything beyond the driver. */
  readonly db: PGlite;
  /** A driver over `db`; its `close()` closes `db`. */
  readonly driver: PgliteDriver;
  /** Closes `db`. */
  close(): Promise<void>;
}

const optionsSchema = z.object({ dataDir: z.string().min(1).optional() }).strict();

/**
 * Opens a PGlite database (in memory unless `dataDir` is given) and a driver over it.
 * `@electric-sql/pglite` is loaded on demand, so it stays an optional dependency.
 *
 * @example
 * ```ts
 * import { openPglite } from 'flagshift/pglite';
 *
 * const { driver, close } = await openPglite();
 * const { rows } = await driver.query<{ answer: number }>('SELECT $1::int AS answer', [42]);
 * await close();
 * ```
 */
export async function openPglite(options?: OpenPgliteOptions): Promise<OpenedPglite> {
  const valid = parseOptions('pglite', optionsSchema, options ?? {}, { dataDir: 'a non-empty string' });
  let module: typeof import('@electric-sql/pglite');
  try {
    module = await import('@electric-sql/pglite');
  } catch (cause) {
    throw new ConfigurationError(
      'package "@electric-sql/pglite" could not be loaded; install it to use openPglite(): npm install @electric-sql/pglite',
      { cause },
    );
  }
  const db = new module.PGlite(valid.dataDir);
  await db.waitReady;
  const close = () => db.close();
  return { db, driver: new PgliteDriver(db, close), close };
}
