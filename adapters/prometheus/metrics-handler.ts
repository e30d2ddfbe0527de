import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ConfigurationError } from '../../src/index.js';
import { describeValue, parseOptions } from '../../src/internal.js';

/** The part of a prom-client `Registry` the handler uses. */
export interface RegistryLike {
  /** The exposition text of every registered metric. */
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Options of {@link metricsHandler}. */
export interface MetricsHandlerOptions {
  /**
   * The path that serves the metrics; any other path answers 404.
   * @default '/metrics'
   */
  readonly path?: string;
}

const optionsSchema = z.strictObject({ path: z.string().startsWith('/').optional() });

/**
 * A request listener for node:http (`createServer(handler)`) that answers `GET` and `HEAD`
 * of `/metrics` with the registry's exposition text, `404` for other paths and `405` for
 * other methods. A registry that fails to collect answers `500` with the error's message.
 *
 * @param registry - The registry to expose, e.g. `createPrometheusMetrics().registry`.
 * @param options - See {@link MetricsHandlerOptions}. @default {}
 * @throws {ConfigurationError} when the registry or an option is invalid.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createPrometheusMetrics, metricsHandler } from 'flagshift/prometheus';
 *
 * const { registry } = createPrometheusMetrics();
 * createServer(metricsHandler(registry)).listen(9464);
 * ```
 */
export function metricsHandler(
  registry: RegistryLike,
  options: MetricsHandlerOptions = {},
): (request: IncomingMessage, response: ServerResponse) => void {
  if (typeof (registry as Partial<RegistryLike> | null)?.metrics !== 'function') {
    throw new ConfigurationError(
      `metricsHandler: registry must be a prom-client Registry (with metrics()), got ${describeValue(registry)}`,
      { path: 'registry' },
    );
  }
  const valid = parseOptions('metricsHandler', optionsSchema, options, { path: 'a path starting with "/"' });
  const path = valid.path ?? '/metrics';

  return (request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (pathname !== path) {
      respond(response, 404, 'text/plain; charset=utf-8', `not found: metrics are at ${path}\n`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      respond(response, 405, 'text/plain; charset=utf-8', `method ${request.method ?? ''} not allowed\n`);
      return;
    }
    registry.metrics().then(
      (text) => respond(response, 200, registry.contentType, request.method === 'HEAD' ? undefined : text),
      (error: unknown) =>
        respond(
          response,
          500,
          'text/plain; charset=utf-8',
          `collecting metrics failed: ${error instanceof Error ? error.message : String(error)}\n`,
        ),
    );
  };
}

function respond(response: ServerResponse, status: number, contentType: string, body: string | undefined): void {
  if (response.headersSent) return;
  response.statusCode = status;
  response.setHeader('Content-Type', contentType);
  response.setHeader('Cache-Control', 'no-store');
  response.end(body);
}
