/**
 * The dashboard token: the secret every change must carry in the {@link TOKEN_HEADER}
 * header. It is compared in constant time, and no message, log line or URL ever holds it:
 * a refusal says what was wrong with the header, never what it held.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';
import { TOKEN_HEADER } from './token-header.js';

/** The shortest token the dashboard takes: a generated one is 43 characters. */
export const MIN_TOKEN_LENGTH = 16;

/** What a token may hold: visible ASCII, so it survives a terminal, a paste and an HTTP header unchanged. */
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/** A new token: 256 random bits, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Why `token` can't be the dashboard token, or `undefined` when it can. The answer never
 * quotes the token: it would end up in an error message, and from there in a log.
 */
export function tokenProblem(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH) {
    return `must be at least ${MIN_TOKEN_LENGTH} characters, got ${token.length} (generate one with \`openssl rand -base64 32\`)`;
  }
  if (!TOKEN_CHARACTERS.test(token)) {
    return 'must be visible ASCII characters only (no spaces or control characters)';
  }
  return undefined;
}

/** Checks a request carries the token; see {@link createTokenCheck}. */
export type TokenCheck = (request: IncomingMessage) => void;

/**
 * A check that refuses (401) a request whose {@link TOKEN_HEADER} header is missing or is
 * not `token`. Both sides are hashed first, so the constant-time comparison also hides
 * the token's length.
 */
export function createTokenCheck(token: string): TokenCheck {
  const expected = digest(token);
  return (request) => {
    const sent = request.headers[TOKEN_HEADER];
    if (sent === undefined || sent === '') {
      throw unauthorized(
        `changes need the dashboard token in the ${TOKEN_HEADER} header (flagshift dashboard prints it at start, or it is FLAGSHIFT_DASHBOARD_TOKEN)`,
      );
    }
    // Node joins repeated headers with ", ": a list is never the token.
    if (!timingSafeEqual(digest(String(sent)), expected)) {
      throw unauthorized(`the dashboard token in the ${TOKEN_HEADER} header is wrong`);
    }
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, message, { headers: { 'www-authenticate': `FlagshiftToken header="${TOKEN_HEADER}"` } });
}
