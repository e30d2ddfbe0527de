/**
 * `flagshift/postgres-flags`: feature flags in a PostgreSQL table, served by an
 * OpenFeature provider that hears every change at once through `LISTEN`/`NOTIFY`. The
 * embedded choice for teams without a flag service: migration stages and read percentages
 * live next to the data they route. Needs `@openfeature/server-sdk` and `pg` (optional peer
 * dependencies), or PGlite for a single process.
 *
 * @example
 * ```ts
 * import { OpenFeature } from '@openfeature/server-sdk';
 * import pg from 'pg';
 * import { createOpenFeatureFlags } from 'flagshift/openfeature';
 * import { createPgDriver } from 'flagshift/pg';
 * import { createPostgresFlagProvider, killMigration, setMigrationFlags } from 'flagshift/postgres-flags';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await OpenFeature.setProviderAndWait('migrations', createPostgresFlagProvider({ pool }));
 * const flags = createOpenFeatureFlags({ domain: 'migrations' });
 *
 * // In any process: every provider hears it within a round trip.
 * const driver = createPgDriver(pool);
 * await setMigrationFlags(driver, usernameRename, { stage: 'live', percent: 10 });
 * await killMigration(driver, usernameRename, { reason: 'p99 doubled' });
 * ```
 *
 * @module
 */
export {
  type FlagJson,
  type FlagRecord,
  type FlagTableOptions,
  type FlagValue,
  MAX_FLAG_KEY_LENGTH,
} from './flag-table.js';
export type { ListenClientLike, ListenPgliteLike, ListenPoolLike, NotificationLike } from './listen-source.js';
export {
  changeMigrationFlags,
  type FlagStoreDb,
  type FlagWriteOptions,
  getFlags,
  getMigrationFlags,
  type KillResult,
  killMigration,
  type MigrationFlagChange,
  type MigrationFlagState,
  type MigrationFlagsChanged,
  type MigrationFlagTarget,
  removeFlag,
  type SetMigrationFlagsOptions,
  setFlag,
  setMigrationFlags,
} from './migration-flags.js';
export {
  createPostgresFlagProvider,
  type JsonValueLike,
  PostgresFlagProvider,
  type PostgresFlagProviderOptions,
  type ProviderEventDetailsLike,
  type ProviderEventEmitterLike,
  type ProviderEventHandlerLike,
  type ResolutionDetailsLike,
} from './postgres-flag-provider.js';
