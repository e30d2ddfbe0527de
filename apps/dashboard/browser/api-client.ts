/**
 * The page's one way to the server: the JSON API on its own origin. Changes go as JSON,
 * with the dashboard token in a custom header: the server requires both, and a page on
 * another site can send neither without a preflight the server never grants.
 */
import { TOKEN_HEADER } from '../token-header.js';
import type { DashboardState, FlagChange } from './types.js';

/** A change the page asks for: a ramp (stage and/or read percentage) or a kill. */
export type ControlRequest = { readonly kind: 'set'; readonly change: FlagChange } | { readonly kind: 'kill' };

/** The server's answer to a change, as the operator reads it. */
export interface ControlAnswer {
  /** Whether the server made the change. */
  readonly ok: boolean;
  /** Whether it was refused for the token: the page then asks for it again. */
  readonly unauthorized: boolean;
  /** What the server said: its message, or its error. */
  readonly message: string;
}

/**
 * `GET /api/state`, with the series over the window named `window` (the server's own
 * window when empty). Throws when the server can't be reached or answers with an error status.
 */
export async function fetchState(window: string): Promise<DashboardState> {
  const path = window === '' ? '/api/state' : `/api/state?window=${encodeURIComponent(window)}`;
  const response = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as DashboardState;
}

/**
 * `POST /api/migrations/:name/flags` or `.../kill`, authorized by `token`. A refusal is an
 * answer (`ok: false`); throws only when the server can't be reached.
 */
export function sendControl(migration: string, request: ControlRequest, token: string): Promise<ControlAnswer> {
  const path = `/api/migrations/${encodeURIComponent(migration)}/${request.kind === 'kill' ? 'kill' : 'flags'}`;
  return post(path, request.kind === 'kill' ? {} : request.change, token);
}

/** `POST /api/token`: whether the server takes `token`. Throws only when the server can't be reached. */
export function checkToken(token: string): Promise<ControlAnswer> {
  return post('/api/token', {}, token);
}

async function post(path: string, body: unknown, token: string): Promise<ControlAnswer> {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [TOKEN_HEADER]: token },
    body: JSON.stringify(body),
  });
  const answer = (await response.json().catch(() => ({}))) as { error?: unknown; message?: unknown };
  if (!response.ok) {
    return {
      ok: false,
      unauthorized: response.status === 401,
      message: String(answer.error || `request failed with HTTP ${response.status}`),
    };
  }
  return { ok: true, unauthorized: false, message: String(answer.message || 'Done.') };
}
