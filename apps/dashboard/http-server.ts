/**
 * The dashboard's HTTP plumbing over `node:http`: listening, writing answers with the
 * headers every answer carries, reading JSON bodies, and turning a thrown error into a JSON
 * error answer. What is served where is the routes' business, not this file's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpError } from './http-error.js';

/** An answer to write. */
export interface HttpReply {
  readonly status: number;
  /** The `content-type`. */
  readonly type: string;
  readonly body: string;
  /** Headers besides the ones every answer carries; they win over those. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Answers one request; throw an {@link HttpError} to refuse it. */
export type HttpHandler = (request: IncomingMessage, server: { readonly port: number }) => Promise<HttpReply>;

/** Options of {@link serveHttp}. */
export interface ServeHttpOptions {
  readonly host: string;
  /** `0` picks a free one. */
  readonly port: number;
  readonly handle: HttpHandler;
}

/** A listening server. */
export interface HttpService {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Headers on every answer: never cached, never sniffed, never framed, no referrer. */
const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** A JSON answer runs nothing and loads nothing, even when opened as a page. */
const JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";

const MAX_BODY_BYTES = 16 * 1024;

/** An answer with `value` as JSON. */
export function jsonReply(status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): HttpReply {
  return {
    status,
    type: 'application/json; charset=utf-8',
    body: JSON.stringify(value),
    headers: { 'content-security-policy': JSON_CONTENT_SECURITY_POLICY, ...headers },
  };
}

/** Listens on `host` and `port` and answers every request with `handle`. */
export async function serveHttp(options: ServeHttpOptions): Promise<HttpService> {
  const bound = { port: 0 };
  const server = createServer((request, response) => {
    options
      .handle(request, bound)
      .catch(errorReply)
      .then((reply) => send(response, reply))
      // Only writing the answer itself can fail here; the connection is all that is left to end.
      .catch(() => response.destroy());
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  bound.port = (server.address() as AddressInfo).port;
  const host = options.host;
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${bound.port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** The body of `request` parsed as JSON; `undefined` when there is none. */
export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
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
    throw new HttpError(400, `request body is not valid JSON: ${messageOf(error)}`, { cause: error });
  }
}

/** An error's message, or the thrown value as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorReply(error: unknown): HttpReply {
  if (error instanceof HttpError) return jsonReply(error.status, { ok: false, error: error.message }, error.headers);
  return jsonReply(500, { ok: false, error: `dashboard error: ${messageOf(error)}` });
}

function send(response: ServerResponse, reply: HttpReply): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  const bytes = Buffer.from(reply.body, 'utf8');
  response.writeHead(reply.status, {
    ...COMMON_HEADERS,
    'content-type': reply.type,
    'content-length': String(bytes.length),
    ...reply.headers,
  });
  response.end(response.req.method === 'HEAD' ? undefined : bytes);
}
