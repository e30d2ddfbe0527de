/**
 * The request header that carries the dashboard token, shared by the server and the page.
 * A custom header on purpose: a page on another site can't send one without a CORS
 * preflight, which the dashboard never grants, so a cross-site form or image can't carry
 * it, and unlike a cookie the browser never attaches it on its own.
 */

/** The header changes carry the dashboard token in (lowercase, as Node reads headers). */
export const TOKEN_HEADER = 'x-flagshift-token';
