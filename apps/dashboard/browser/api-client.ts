/**
 * The page's one way to the server: the JSON API on its own origin. Changes go as JSON,
 * which the server requires of them (a cross-site form can't send JSON without a preflight).
 */
import type { DashboardState, FlagChange } from './types.js';

/** A change the page asks for: a ramp (stage and/or read percentage) or a kill. */
export type ControlRequest = { readonly kind: 'set'; readonly change: FlagChange } | { readonly kind: 'kill' };

/** The server's answer to a change, as the operator reads it. */
export interface ControlAnswer {
  /** Whether the server made the change. */
  readonly ok: boolean;
  /** What the server said: its message, or its error. */
  readonly message: string;
}

/** `GET /api/state`. Throws when the server can't be reached or answers with an error status. */
export async function fetchState(): Promise<DashboardState> {
  const response = await fetch('/api/state', { cache: 'no-store', headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as DashboardState;
}

/**
 * `POST /api/migrations/:name/flags` or `.../kill`. A refusal is an answer (`ok: false`);
 * throws only when the server can't be reached.
 */
export async function sendControl(migration: string, request: ControlRequest): Promise<ControlAnswer> {
  const path = `/api/migrations/${encodeURIComponent(migration)}/${request.kind === 'kill' ? 'kill' : 'flags'}`;
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request.kind === 'kill' ? {} : request.change),
  });
  const answer = (await response.json().catch(() => ({}))) as { error?: unknown; message?: unknown };
  if (!response.ok) {
    return { ok: false, message: String(answer.error || `request failed with HTTP ${response.status}`) };
  }
  return { ok: true, message: String(answer.message || 'Done.') };
}
