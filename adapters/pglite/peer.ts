import { importOptionalPeers } from '../../src/internal.js';

/**
 * `@electric-sql/pglite`, loaded when `flagshift/pglite` is imported: without it the
 * import fails with the install command rather than later, in `openPglite()`.
 */
export const [pglite] = await importOptionalPeers<[typeof import('@electric-sql/pglite')]>('flagshift/pglite', [
  '@electric-sql/pglite',
]);
