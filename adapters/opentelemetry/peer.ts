import { importOptionalPeers } from '../../src/internal.js';

/**
 * `@opentelemetry/api`, loaded when `flagshift/opentelemetry` is imported: without it the
 * import fails with the install command rather than a bare `ERR_MODULE_NOT_FOUND`.
 */
export const [openTelemetryApi] = await importOptionalPeers<[typeof import('@opentelemetry/api')]>(
  'flagshift/opentelemetry',
  ['@opentelemetry/api'],
);
