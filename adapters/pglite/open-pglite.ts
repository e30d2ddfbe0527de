import { z } from 'zod';
import { parseOptions } from '../../src/internal.js';
import { pglite } from './peer.js';
import { type PGliteLike, PgliteDriver } from './pglite-driver.js';

/** Options of {@link openPglite}. */
export interface OpenPgliteOptions {
  /**
   * Where PGlite keeps its files: a directory path in Node, `idb://name` in a browser.
   * @default undefined (in memory, gone when closed)
   */
  readonly dataDir?: string;
}

/**
 * The PGlite database {@link openPglite} opened: a real `PGlite`, typed by the part
 * flagshift's adapters use so that flagshift's types hold without `@electric-sql/pglite`.
 * Cast it to `PGlite` for the rest of its API.
 */
export interface OpenedPgliteDb extends PGliteLike {
  /** Closes the database. */
  close(): Promise<void>;
  /** Whether it is closed. */
  readonly closed: boolean;
}

/** A PGlite database opened by {@link openPglite}, with its driver. */
export interface OpenedPglite {
  /** The PGlite instance, for anything beyond the driver. */
  readonly db: OpenedPgliteDb;
  /** A driver over `db`; its `close()` closes `db`. */
  readonly driver: PgliteDriver;
  /** Closes `db`. */
  close(): Promise<void>;
}

const optionsSchema = z.object({ dataDir: z.string().min(1).optional() }).strict();

/**
 * Opens a PGlite database (in memory unless `dataDir` is given) and a driver over it.
 * `@electric-sql/pglite` is an optional peer dependency, loaded when `flagshift/pglite` is imported.
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
  const db = new pglite.PGlite(valid.dataDir);
  await db.waitReady;
  const close = () => db.close();
  return { db, driver: new PgliteDriver(db, close), close };
}
