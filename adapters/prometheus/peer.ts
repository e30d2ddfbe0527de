import { importOptionalPeers } from '../../src/internal.js';

/**
 * prom-client, loaded when `flagshift/prometheus` is imported: without it the import fails
 * with the install command rather than a bare `ERR_MODULE_NOT_FOUND`.
 */
export const [promClient] = await importOptionalPeers<[typeof import('prom-client')]>('flagshift/prometheus', [
  'prom-client',
]);
