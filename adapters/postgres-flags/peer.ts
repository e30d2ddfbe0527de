import { importOptionalPeers } from '../../src/internal.js';

/**
 * `@openfeature/server-sdk`, loaded when `flagshift/postgres-flags` is imported: without
 * it the import fails with the install command rather than a bare `ERR_MODULE_NOT_FOUND`.
 */
export const [openFeatureSdk] = await importOptionalPeers<[typeof import('@openfeature/server-sdk')]>(
  'flagshift/postgres-flags',
  ['@openfeature/server-sdk'],
);
