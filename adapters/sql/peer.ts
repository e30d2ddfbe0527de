import { importOptionalPeers } from '../../src/internal.js';

/**
 * `libpg-query` (PostgreSQL's parser compiled to WASM) and `pgsql-deparser`, loaded when
 * `flagshift/sql` is imported: without them the import fails with the install command
 * rather than at the first routed statement.
 */
export const [libpgQuery, pgsqlDeparser] = await importOptionalPeers<
  [typeof import('libpg-query'), typeof import('pgsql-deparser')]
>('flagshift/sql', ['libpg-query', 'pgsql-deparser']);
