/**
 * `flagshift/pg`: runs flagshift on node-postgres (`pg`, an optional peer dependency).
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createPgDriver } from 'flagshift/pg';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const driver = createPgDriver(pool);
 * const { rows } = await driver.query('SELECT now() AS now');
 * ```
 *
 * @module
 */
export {
  createPgDriver,
  type PgClientLike,
  PgDriver,
  type PgDriverOptions,
  type PgPoolClientLike,
  type PgPoolLike,
  type PgQueryResultLike,
} from './pg-driver.js';
export { MAX_PREPARED } from './prepared-statements.js';
