/**
 * What the dashboard serves where: the page, the state and the two changes, as one table.
 * Every request is first checked for the `Host` it was addressed to (when the dashboard
 * listens on loopback), then for its method; changes also for their origin.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Migration } from '../../src/index.js';
import type { DashboardApi } from './dashboard-api.js';
import { pageContentSecurityPolicy, renderDashboardPage } from './dashboard-page.js';
import { HttpError } from './http-error.js';
import { type HttpHandler, type HttpReply, jsonReply, readJsonBody } from './http-server.js';
import { allowMethods, checkLoopbackHost, checkSameOrigin } from './request-guards.js';

/** What {@link createDashboardRoutes} serves. */
export interface DashboardRoutesOptions {
  readonly api: DashboardApi;
  /** The migrations the page lists, in this order. */
  readonly migrations: readonly Migration[];
  /** Whether the page offers ramp and kill controls. */
  readonly controls: boolean;
  /** How often the page refreshes, in milliseconds. */
  readonly refreshMs: number;
  /** The page's script (see `loadDashboardScript`). */
  readonly script: string;
  /** Whether to answer only requests addressed to loopback (the dashboard listens there). */
  readonly loopbackOnly: boolean;
}

interface Route {
  /** Matched against the whole path; groups are passed to `handle`. */
  readonly path: RegExp;
  readonly methods: readonly string[];
  readonly handle: (request: IncomingMessage, params: readonly string[]) => Promise<HttpReply>;
}

/** The handler of every request the dashboard gets. */
export function createDashboardRoutes(options: DashboardRoutesOptions): HttpHandler {
  const { api } = options;

  async function change(request: IncomingMessage, name: string, action: 'flags' | 'kill'): Promise<HttpReply> {
    const migration = api.migration(decodeName(name));
    checkSameOrigin(request);
    const body = await readJsonBody(request);
    const answer = action === 'flags' ? await api.changeFlags(migration, body) : await api.kill(migration, body);
    return jsonReply(200, answer);
  }

  const routes: readonly Route[] = [
    { path: /^\/$/, methods: ['GET', 'HEAD'], handle: async () => page(options) },
    { path: /^\/api\/state$/, methods: ['GET', 'HEAD'], handle: async () => jsonReply(200, await api.state()) },
    {
      path: /^\/api\/migrations\/([^/]+)\/(flags|kill)$/,
      methods: ['POST'],
      handle: (request, [name, action]) => change(request, name!, action as 'flags' | 'kill'),
    },
  ];

  return async (request, server) => {
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    if (options.loopbackOnly) checkLoopbackHost(request, server.port);
    for (const route of routes) {
      const match = route.path.exec(url.pathname);
      if (match === null) continue;
      allowMethods(request.method ?? 'GET', route.methods);
      return route.handle(request, match.slice(1));
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
      controls: options.controls,
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
