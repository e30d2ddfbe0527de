/**
 * Which `Host` the dashboard answers to. A DNS rebinding page reaches the dashboard under
 * the attacker's own name (its DNS answer switched to the dashboard's address), so the
 * browser sends that name as `Host`: answering only the names the dashboard is meant to be
 * reached by stops it, on loopback and on any other address alike.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

/** A name the dashboard answers to, and on which port. */
export interface HostRule {
  /** Lowercase; an IPv6 address in brackets (`[::1]`), as it appears in a `Host` header. */
  readonly name: string;
  /** `bound`: the port the dashboard listens on; `any`: whatever port the `Host` names. */
  readonly port: number | 'bound' | 'any';
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Addresses that listen on every interface: no one reaches the dashboard by that name. */
const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);

/** A `Host` value: a name (or bracketed IPv6 address) and an optional port. */
const HOST_SYNTAX = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/;

/** Whether `host` (a listen address or a `Host` header's name) is loopback. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host);
}

/** Whether `host` is a listen address for every interface. */
export function isWildcard(host: string): boolean {
  return WILDCARD.has(host);
}

/**
 * An allow-list entry as a rule: `name` answers on any port (behind a proxy the port in
 * `Host` is the proxy's), `name:port` on that port only. `undefined` when it is no host.
 */
export function parseAllowedHost(entry: string): HostRule | undefined {
  const parsed = parseHost(entry);
  if (parsed === undefined) return undefined;
  return { name: parsed.name, port: parsed.port ?? 'any' };
}

/**
 * The names a dashboard listening on `bound` answers to without being told, each on the
 * port it listens on: the address itself (its URL names it), and the loopback names when
 * it listens there too (on loopback, or on every address). No DNS answer can make a
 * browser send one of those as `Host` for an attacker's name.
 */
export function boundHostRules(bound: string): readonly HostRule[] {
  const address = bracketed(bound.toLowerCase());
  const loopback = ['127.0.0.1', 'localhost', '[::1]'];
  const names = isLoopback(bound) ? loopback : isWildcard(bound) ? [address, ...loopback] : [address];
  return names.map((name) => ({ name, port: 'bound' }));
}

/**
 * Refuses (421) a request whose `Host` no rule in `rules` allows: it may come from a DNS
 * rebinding page. `port` is the port the dashboard listens on.
 */
export function checkHost(request: IncomingMessage, rules: readonly HostRule[], port: number): void {
  const host = parseHost(request.headers.host ?? '');
  if (host !== undefined && rules.some((rule) => matches(rule, host, port))) return;
  throw new HttpError(
    421,
    'this dashboard answers only requests addressed to the host names it was started with (see its allowedHosts option)',
  );
}

function matches(rule: HostRule, host: { name: string; port: number | undefined }, bound: number): boolean {
  if (rule.name !== host.name) return false;
  if (rule.port === 'any') return true;
  // A `Host` without a port names HTTP's default one.
  return (host.port ?? 80) === (rule.port === 'bound' ? bound : rule.port);
}

function parseHost(text: string): { name: string; port: number | undefined } | undefined {
  const match = HOST_SYNTAX.exec(text.trim().toLowerCase());
  if (match === null) return undefined;
  const [, name, portText] = match;
  if (portText === undefined) return { name: name!, port: undefined };
  const port = Number(portText);
  return port >= 1 && port <= 65_535 ? { name: name!, port } : undefined;
}

function bracketed(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}
