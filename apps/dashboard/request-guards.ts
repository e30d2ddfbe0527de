/**
 * Checks a request passes before the dashboard looks at what it asks: the method and, for
 * changes, that it comes from the dashboard's own page with nothing in its URL. (Which
 * `Host` it may name is `allowed-hosts.ts`; the token is `dashboard-token.ts`.)
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

/** Refuses (405, with `allow`) a method not in `allowed`. */
export function allowMethods(method: string, allowed: readonly string[]): void {
  if (allowed.includes(method)) return;
  throw new HttpError(405, `method ${method} is not allowed here; use ${allowed.join(' or ')}`, {
    headers: { allow: allowed.join(', ') },
  });
}

/**
 * Refuses (400) a change whose URL has a query string. Changes take their parameters as
 * JSON and the token in a header; a token put in a URL would be in proxy logs and browser
 * history, so a URL that tries is turned away before anything is read from it.
 */
export function checkNoQuery(url: URL): void {
  if (url.search === '') return;
  throw new HttpError(
    400,
    'changes take no query string: send parameters as JSON and the token in its header, never in the URL ' +
      '(a token that was in a URL may be in logs now: start the dashboard with a new one)',
  );
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
