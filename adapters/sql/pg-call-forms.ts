/**
 * node-postgres's call forms, shared by the routed pool and the routed PGlite's pg-style
 * client: `query(text, values?)`, `query(config)`, `query(config, values)`, each with an
 * optional trailing callback that replaces the promise.
 */
import type { StatementConfig } from './session.js';

/** pg's node-style callback of `query`. */
type QueryCallback<R> = (error: Error | null, result?: R) => void;

/**
 * The statement of a pg-style call. A submittable (pg-query-stream, pg-cursor) is refused:
 * the router needs the whole result to compare and strip its hidden columns.
 */
export function statementOf(textOrConfig: string | StatementConfig, values: unknown): StatementConfig {
  if (typeof textOrConfig !== 'string' && typeof textOrConfig?.submit === 'function') {
    throw new TypeError('routed SQL: query streams and cursors (pg-query-stream, pg-cursor) are not routed');
  }
  // A config goes on as the caller made it unless values come beside it: the router never
  // changes a config (a rewritten text runs in a copy).
  const given = Array.isArray(values) ? (values as unknown[]) : undefined;
  if (typeof textOrConfig === 'string')
    return given === undefined ? { text: textOrConfig } : { text: textOrConfig, values: given };
  return given === undefined ? textOrConfig : { ...textOrConfig, values: given };
}

/** The callback of a pg-style call: its last function argument, after the values or in their place. */
export function callbackOf(values: unknown, callback: unknown): unknown {
  return typeof values === 'function' ? values : callback;
}

/** pg's callback of `connect`: the client, and the function that releases it. */
export type ConnectCallback<C> = (error: Error | null, client?: C, release?: (error?: Error | boolean) => void) => void;

/** A checkout handed back as pg's `connect` does: to `callback` with the client and its release when there is one, else as it is. */
export function settleConnect<C extends { release(error?: Error | boolean): void }>(
  connected: Promise<C>,
  callback: unknown,
): Promise<C> | undefined {
  if (typeof callback !== 'function') return connected;
  connected.then(
    (client) => (callback as ConnectCallback<C>)(null, client, (error) => client.release(error)),
    (error: Error) => (callback as ConnectCallback<C>)(error),
  );
  return undefined;
}

/** `promise` handed back as pg does: to `callback` when there is one (and `undefined` returned), else as it is. */
export function settle<R>(promise: Promise<R>, callback: unknown): Promise<R> | undefined {
  if (typeof callback !== 'function') return promise;
  promise.then(
    (result) => (callback as QueryCallback<R>)(null, result),
    (error: Error) => (callback as QueryCallback<R>)(error),
  );
  return undefined;
}
