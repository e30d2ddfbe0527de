/**
 * The dashboard server: `node:http`, one page and a small JSON API. It binds to loopback
 * by default and, while it does, answers only requests addressed to loopback (a DNS
 * rebinding page can't reach it) and takes changes only as same-origin JSON (a page on
 * another site can't post a form to it).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { MigrationFlagChange } from '../../adapters/postgres-flags/migration-flags.js';
import { ConfigurationError, ErrorCode, type Migration, type Queryable, STAGES } from '../../src/index.js';
import { identifierProblem } from '../../src/internal.js';
import { pageContentSecurityPolicy, renderDashboardPage } from './dashboard-page.js';
import { loadDashboardScript } from './dashboard-script.js';
import { collectDashboardState, type DashboardState, type StateSources } from './dashboard-state.js';
import type { DashboardFlagControl } from './flag-control.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** The database whose flagshift state is shown (a flagshift driver, or anything with `query`). */
  readonly driver: Queryable;
  /** The migrations to show, in this order. */
  readonly migrations: readonly Migration[];
  /**
   * Ramp and kill controls; without them the page is read-only. Give
   * `createPostgresFlagControl(driver)` when the processes use the PostgreSQL flag provider.
   * @default undefined (read-only)
   */
  readonly flags?: DashboardFlagControl;
  /**
   * TCP port; `0` picks a free one (see {@link Dashboard.url}).
   * @default 0
   */
  readonly port?: number;
  /**
   * Address to listen on. Anything but loopback exposes the controls to the network, with
   * no authentication: put a proxy with authentication in front.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Schema of flagshift's state tables (metrics, backfill checkpoints, verifications).
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
  /**
   * Where the PostgreSQL flag table is, read when `flags` has no `get`.
   * @default { schema: 'flagshift', table: 'flags' }
   */
  readonly flagTable?: { readonly schema?: string; readonly table?: string };
  /**
   * How often the page refreshes, in milliseconds.
   * @default 1500
   */
  readonly refreshMs?: number;
  /**
   * How far back the mismatch-rate chart goes, in milliseconds.
   * @default 1800000 (30 minutes)
   */
  readonly seriesWindowMs?: number;
  /**
   * Width of one point of the chart, in milliseconds.
   * @default 30000
   */
  readonly seriesBucketMs?: number;
  /**
   * A process's published metrics count while younger than this, in milliseconds.
   * @default three of the process's publish intervals, plus one second
   */
  readonly metricsMaxAgeMs?: number;
  /**
   * Mismatch samples shown per migration.
   * @default 20
   */
  readonly sampleLimit?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

const identifier = z
  .string()
  .refine((value) => identifierProblem(value) === undefined, 'must be a plain identifier (letters, digits, _)');

const optionsSchema = z.strictObject({
  driver: z.custom<Queryable>(
    (value) => typeof (value as Partial<Queryable> | null)?.query === 'function',
    'must be a driver from flagshift/pg or flagshift/pglite',
  ),
  migrations: z
    .array(
      z.custom<Migration>(
        (value) => (value as { kind?: unknown } | null)?.kind === 'migration',
        'must be migrations from defineMigration()',
      ),
      'must be a list of migrations from defineMigration()',
    )
    .min(1, 'must name at least one migration'),
  flags: z
    .custom<DashboardFlagControl>(
      (value) =>
        typeof (value as Partial<DashboardFlagControl> | null)?.set === 'function' &&
        typeof (value as Partial<DashboardFlagControl>).kill === 'function',
      'must have set() and kill() functions, like createPostgresFlagControl(driver)',
    )
    .optional(),
  port: z.number().int().min(0).max(65_535).optional(),
  host: z.string().min(1).optional(),
  stateSchema: identifier.optional(),
  flagTable: z.strictObject({ schema: identifier.optional(), table: identifier.optional() }).optional(),
  refreshMs: z.number().int().min(250).max(600_000).optional(),
  seriesWindowMs: z
    .number()
    .int()
    .min(10_000)
    .max(7 * 86_400_000)
    .optional(),
  seriesBucketMs: z.number().int().min(100).max(86_400_000).optional(),
  metricsMaxAgeMs: z.number().int().min(1).optional(),
  sampleLimit: z.number().int().min(0).max(1000).optional(),
});

/** The body of `POST /api/migrations/:name/flags`. */
const flagChangeSchema = z
  .strictObject({
    stage: z.enum(STAGES, { error: `must be one of ${STAGES.join(', ')}` }).optional(),
    percent: z
      .number({ error: 'must be a number from 0 to 100' })
      .refine(Number.isFinite, 'must be a number from 0 to 100')
      .refine((value) => value >= 0 && value <= 100, 'must be a number from 0 to 100')
      .optional(),
  })
  .refine((change) => change.stage !== undefined || change.percent !== undefined, {
    error: 'nothing to change: give "stage" and/or "percent"',
  });

/** The body of `POST /api/migrations/:name/kill`: nothing, or an empty object. */
const killSchema = z.strictObject({});

const MAX_BODY_BYTES = 16 * 1024;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 80)}...` : text;
  } catch {
    return String(value);
  }
}

/** A message naming the field and the value sent, from the first zod issue. */
function bodyError(migration: string, body: unknown, error: z.ZodError): HttpError {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    return new HttpError(
      400,
      `migration "${migration}": unknown field "${issue.keys[0]}"; give "stage" and/or "percent"`,
    );
  }
  const field = issue.path[0];
  if (field === undefined) return new HttpError(400, `migration "${migration}": ${issue.message}`);
  const value = (body as Record<string, unknown>)[String(field)];
  return new HttpError(400, `migration "${migration}": ${String(field)} ${issue.message}, got ${describeValue(value)}`);
}

/**
 * Starts the dashboard: one page showing, per migration, its stage and read percentage,
 * the fleet's mismatch rate over time, recent redacted mismatch samples with their field
 * diffs, latency per side, backfill progress and the last verification, refreshed live;
 * with `flags`, also ramp and kill controls, each confirmed in the page first.
 *
 * Metrics come from processes that publish them with `createMetricsPublisher` (from
 * `flagshift/lifecycle`); without any, the page says so. Routes: `GET /` (the page),
 * `GET /api/state` (JSON), `POST /api/migrations/:name/flags` (`{ stage?, percent? }`)
 * and `POST /api/migrations/:name/kill`.
 *
 * @throws {ConfigurationError} when an option is invalid, or the page's script is missing
 *   (a package built without it).
 * @example
 * ```ts
 * import { createPgDriver } from 'flagshift/pg';
 * import { createPostgresFlagControl, startDashboard } from 'flagshift/dashboard';
 *
 * const driver = createPgDriver(pool);
 * const dashboard = await startDashboard({
 *   driver,
 *   migrations: [usernameRename],
 *   flags: createPostgresFlagControl(driver),
 *   port: 4580,
 * });
 * console.log(`dashboard at ${dashboard.url}`);
 * ```
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? (issue.keys[0] ?? '') : issue.path.join('.');
    const message =
      issue.code === 'unrecognized_keys'
        ? `dashboard option "${path}" is not a known option`
        : `dashboard option "${path}" ${issue.message}`;
    throw new ConfigurationError(message, { path, cause: parsed.error });
  }
  const o = parsed.data;
  const byName = new Map<string, Migration>();
  for (const migration of o.migrations) {
    if (byName.has(migration.name)) {
      throw new ConfigurationError(`dashboard option "migrations" names migration "${migration.name}" twice`, {
        path: 'migrations',
      });
    }
    byName.set(migration.name, migration);
  }
  const host = o.host ?? '127.0.0.1';
  const refreshMs = o.refreshMs ?? 1500;
  const sources: StateSources = {
    db: o.driver,
    migrations: o.migrations,
    flags: o.flags,
    stateSchema: o.stateSchema ?? 'flagshift',
    flagTable: o.flagTable ?? {},
    metrics: {
      seriesWindowMs: o.seriesWindowMs ?? 1_800_000,
      seriesBucketMs: o.seriesBucketMs ?? 30_000,
      sampleLimit: o.sampleLimit ?? 20,
      ...(o.metricsMaxAgeMs === undefined ? {} : { maxAgeMs: o.metricsMaxAgeMs }),
    },
  };

  // Tabs polling at once share one read of the database.
  let reading: Promise<DashboardState> | undefined;
  const readState = () => {
    reading ??= collectDashboardState(sources).finally(() => {
      reading = undefined;
    });
    return reading;
  };

  // Before listening: a dashboard whose page has no script must not start, not serve a blank page.
  const script = await loadDashboardScript();

  let port = 0;
  const loopbackOnly = LOOPBACK.has(host);

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    if (loopbackOnly && !isLoopbackHost(request.headers.host, port)) {
      throw new HttpError(421, 'this dashboard answers only requests addressed to localhost');
    }
    const method = request.method ?? 'GET';
    if (url.pathname === '/') {
      allow(method, ['GET', 'HEAD']);
      const nonce = randomBytes(16).toString('base64');
      const html = renderDashboardPage({
        migrations: o.migrations,
        controls: o.flags !== undefined,
        refreshMs,
        nonce,
        script,
      });
      send(response, 200, 'text/html; charset=utf-8', html, {
        'content-security-policy': pageContentSecurityPolicy(nonce),
      });
      return;
    }
    if (url.pathname === '/api/state') {
      allow(method, ['GET', 'HEAD']);
      sendJson(response, 200, await readState());
      return;
    }
    const action = /^\/api\/migrations\/([^/]+)\/(flags|kill)$/.exec(url.pathname);
    if (action !== null) {
      allow(method, ['POST']);
      const name = decodeName(action[1]!);
      const migration = byName.get(name);
      if (migration === undefined) {
        throw new HttpError(404, `migration ${JSON.stringify(name)} is not on this dashboard`);
      }
      checkSameOrigin(request);
      const body = await readJsonBody(request);
      if (o.flags === undefined) {
        throw new HttpError(
          403,
          'ramp and kill controls are off: the dashboard was started without a flag control (the PostgreSQL flag provider)',
        );
      }
      if (action[2] === 'flags') {
        const change = flagChangeSchema.safeParse(body);
        if (!change.success) throw bodyError(name, body, change.error);
        const result = await callControl(() => o.flags!.set(migration, change.data as MigrationFlagChange));
        const what = [
          change.data.stage === undefined ? undefined : `stage ${change.data.stage}`,
          change.data.percent === undefined ? undefined : `read ${change.data.percent}%`,
        ].filter((part) => part !== undefined);
        sendJson(response, 200, { ok: true, message: `Migration "${name}": ${what.join(', ')}.`, result });
        return;
      }
      if (body !== undefined && !killSchema.safeParse(body).success) {
        throw new HttpError(400, `migration "${name}": a kill takes no parameters, got ${describeValue(body)}`);
      }
      const result = await callControl(() => o.flags!.kill(migration));
      const changed = (result as { changed?: unknown } | null)?.changed;
      sendJson(response, 200, {
        ok: true,
        message:
          changed === false
            ? `Migration "${name}" already reads old only; nothing changed.`
            : `Migration "${name}" killed: every process reads old again.`,
        result,
      });
      return;
    }
    throw new HttpError(404, `no such page: ${url.pathname}`);
  }

  const server: Server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (error instanceof HttpError) {
        sendJson(
          response,
          error.status,
          { ok: false, error: error.message },
          error.status === 405 ? allowHeader(error) : {},
        );
        return;
      }
      sendJson(response, 500, { ok: false, error: `dashboard error: ${messageOf(error)}` });
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

interface MethodNotAllowed extends HttpError {
  allowed?: readonly string[];
}

function allow(method: string, allowed: readonly string[]): void {
  if (allowed.includes(method)) return;
  const error: MethodNotAllowed = new HttpError(
    405,
    `method ${method} is not allowed here; use ${allowed.join(' or ')}`,
  );
  error.allowed = allowed;
  throw error;
}

function allowHeader(error: MethodNotAllowed): Record<string, string> {
  return error.allowed === undefined ? {} : { allow: error.allowed.join(', ') };
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `migration name ${JSON.stringify(raw)} is not valid URL encoding`);
  }
}

/** Whether the Host header names loopback on our port (anything else may be DNS rebinding). */
function isLoopbackHost(header: string | undefined, port: number): boolean {
  if (header === undefined) return false;
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header.trim().toLowerCase());
  if (match === null) return false;
  const [, name, portText] = match;
  return LOOPBACK.has(name!) && (portText === undefined ? port === 80 : Number(portText) === port);
}

/**
 * Changes must come from the dashboard's own page: JSON (which a cross-site form can't
 * send without a preflight this server never answers) and, when the browser says where
 * the request comes from, from this origin.
 */
function checkSameOrigin(request: IncomingMessage): void {
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
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new HttpError(403, `changes are accepted only from the dashboard's own page, got origin ${origin}`);
    }
    if (originHost !== request.headers.host) {
      throw new HttpError(403, `changes are accepted only from the dashboard's own page, got origin ${origin}`);
    }
  } else if (origin === 'null') {
    throw new HttpError(403, "changes are accepted only from the dashboard's own page, got an opaque origin");
  }
}

async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, `request body is not valid JSON: ${messageOf(error)}`);
  }
}

/** Runs a flag control call; its refusals become 400 (invalid) or 409 (not allowed now). */
async function callControl(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return await call();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === ErrorCode.Validation) throw new HttpError(400, messageOf(error));
    if (code === ErrorCode.StageTransition) throw new HttpError(409, messageOf(error));
    throw new HttpError(500, `the flag change failed: ${messageOf(error)}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function send(
  response: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  const bytes = Buffer.from(body, 'utf8');
  response.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': type,
    'content-length': String(bytes.length),
    ...headers,
  });
  response.end(response.req.method === 'HEAD' ? undefined : bytes);
}

function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value), {
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    ...headers,
  });
}
