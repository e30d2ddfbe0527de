/**
 * Checks a request passes before the dashboard looks at what it asks: the method, the
 * `Host` it was addressed to (a DNS rebinding page names another host) and, for changes,
 * that it comes from the dashboard's own page.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Whether `host` (a listen address or a `Host` header's name) is loopback. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host);
}

/** Refuses (405, with `allow`) a method not in `allowed`. */
export function allowMethods(method: string, allowed: readonly string[]): void {
  if (allowed.includes(method)) return;
  throw new HttpError(405, `method ${method} is not allowed here; use ${allowed.join(' or ')}`, {
    headers: { allow: allowed.join(', ') },
  });
}

/** Refuses (421) a request whose `Host` is not loopback on `port`: it may be DNS rebinding. */
export function checkLoopbackHost(request: IncomingMessage, port: number): void {
  if (!isLoopbackHost(request.headers.host, port)) {
    throw new HttpError(421, 'this dashboard answers only requests addressed to localhost');
  }
}

function isLoopbackHost(header: string | undefined, port: number): boolean {
  if (header === undefined) return false;
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header.trim().toLowerCase());
  if (match === null) return false;
  const [, name, portText] = match;
  return isLoopback(name!) && (portText === undefined ? port === 80 : Number(portText) === port);
}

/**
 * Changes must come from the dashboard's own page: JSON (which a cross-site form can't
 * send without a preflight this server never answers) and, when the browser says where
 * the request comes from, from this origin. Refuses others with 415 or 403.
 */
export function checkSameOrigin(request: IncomingMessage): void {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(
      415,
      `send the change as JSON (content-type application/json), got ${type || 'no content-type'}`,
    );
  }
  const fetchSite = request.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') {
    throw new HttpError(403, `changes are accepted only from the dashboard's own page, not from a ${fetchSite} page`);
  }
  const origin = request.headers.origin;
  if (origin === 'null') {
    throw new HttpError(403, "changes are accepted only from the dashboard's own page, got an opaque origin");
  }
  if (origin !== undefined && !isSameHost(origin, request.headers.host)) {
    throw new HttpError(403, `changes are accepted only from the dashboard's own page, got origin ${origin}`);
  }
}

/** Whether the `Origin` header names `host`; an origin that is no URL names none. */
function isSameHost(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
