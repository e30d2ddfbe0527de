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
export type { PgClientLike, PgPoolClientLike, PgPoolLike, PgQueryResultLike } from './pg-client.js';
export { createPgDriver, PgDriver, type PgDriverOptions } from './pg-driver.js';
export { MAX_PREPARED } from './prepared-statements.js';
