/**
 * What the dashboard serves where: the page, the state and, unless it is read-only, the
 * two changes and the token check, as one table. Every request is first checked for the
 * `Host` it was addressed to, then for its method; changes (and the token check) also for
 * an empty query string, their origin and the token, before anything else is read.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Migration } from '../../src/index.js';
import { checkHost, type HostRule } from './allowed-hosts.js';
import type { DashboardApi } from './dashboard-api.js';
import { pageContentSecurityPolicy, renderDashboardPage } from './dashboard-page.js';
import type { TokenCheck } from './dashboard-token.js';
import { HttpError } from './http-error.js';
import { type HttpHandler, type HttpReply, jsonReply, readJsonBody } from './http-server.js';
import { allowMethods, checkNoQuery, checkSameOrigin } from './request-guards.js';

/** What {@link createDashboardRoutes} serves. */
export interface DashboardRoutesOptions {
  readonly api: DashboardApi;
  /** The migrations the page lists, in this order. */
  readonly migrations: readonly Migration[];
  /** How often the page refreshes, in milliseconds. */
  readonly refreshMs: number;
  /** The page's script (see `loadDashboardScript`). */
  readonly script: string;
  /** The `Host` names the dashboard answers to. */
  readonly hosts: readonly HostRule[];
  /**
   * Checks the token of a change. Without it the dashboard is read-only: the change routes
   * don't exist and the page offers no controls.
   */
  readonly tokenCheck: TokenCheck | undefined;
}

interface Route {
  /** Matched against the whole path; groups are passed to `handle`. */
  readonly path: RegExp;
  readonly methods: readonly string[];
  readonly handle: (request: IncomingMessage, params: readonly string[], url: URL) => Promise<HttpReply>;
}

/** The handler of every request the dashboard gets. */
export function createDashboardRoutes(options: DashboardRoutesOptions): HttpHandler {
  const { api, tokenCheck } = options;

  /** A change's guards, in order: nothing in the URL, from the page's origin, with the token. */
  function authorize(request: IncomingMessage, url: URL, check: TokenCheck): void {
    checkNoQuery(url);
    checkSameOrigin(request);
    check(request);
  }

  const readRoutes: readonly Route[] = [
    { path: /^\/$/, methods: ['GET', 'HEAD'], handle: async () => page(options) },
    {
      path: /^\/api\/state$/,
      methods: ['GET', 'HEAD'],
      handle: async (_request, _params, url) =>
        jsonReply(200, await api.state(url.searchParams.get('window') ?? undefined)),
    },
  ];
  const changeRoutes = (check: TokenCheck): readonly Route[] => [
    {
      // Lets the page tell the operator at once whether the token they pasted is right.
      path: /^\/api\/token$/,
      methods: ['POST'],
      handle: async (request, _params, url) => {
        authorize(request, url, check);
        return jsonReply(200, { ok: true, message: 'The token is right: ramp and kill controls are unlocked.' });
      },
    },
    {
      path: /^\/api\/migrations\/([^/]+)\/(flags|kill)$/,
      methods: ['POST'],
      handle: async (request, [name, action], url) => {
        authorize(request, url, check);
        const migration = api.migration(decodeName(name!));
        const body = await readJsonBody(request);
        const answer = action === 'flags' ? await api.changeFlags(migration, body) : await api.kill(migration, body);
        return jsonReply(200, answer);
      },
    },
  ];
  const routes = tokenCheck === undefined ? readRoutes : [...readRoutes, ...changeRoutes(tokenCheck)];

  return async (request, server) => {
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    checkHost(request, options.hosts, server.port);
    for (const route of routes) {
      const match = route.path.exec(url.pathname);
      if (match === null) continue;
      allowMethods(request.method ?? 'GET', route.methods);
      return route.handle(request, match.slice(1), url);
    }
    throw new HttpError(404, `no such page: ${url.pathname}`);
  };
}

/** The page, with a fresh nonce for its inline style and script. */
function page(options: DashboardRoutesOptions): HttpReply {
  const nonce = randomBytes(16).toString('base64');
  return {
    status: 200,
    type: 'text/html; charset=utf-8',
    body: renderDashboardPage({
      migrations: options.migrations,
      controls: options.tokenCheck !== undefined,
      refreshMs: options.refreshMs,
      nonce,
      script: options.script,
    }),
    headers: { 'content-security-policy': pageContentSecurityPolicy(nonce) },
  };
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `migration name ${JSON.stringify(raw)} is not valid URL encoding`);
  }
}
