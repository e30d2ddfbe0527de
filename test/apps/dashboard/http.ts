/**
 * A small HTTP client for the dashboard tests. `fetch` can't set `Host` or `Origin` freely,
 * and the dashboard's defences (DNS rebinding, cross-site posts) are about exactly those.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { TOKEN_HEADER } from '../../../apps/dashboard/token-header.js';

/** What {@link call} returns. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers.
  readonly json: any;
}

/** Options of {@link call}. */
export interface CallInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON (with content-type application/json unless given). */
  readonly body?: unknown;
  /** Sent as the dashboard token, in its header. */
  readonly token?: string;
}

/** Sends one request to `base` + `path`. */
export function call(base: string, path: string, init: CallInit = {}): Promise<HttpAnswer> {
  const url = new URL(path, base);
  const headers: Record<string, string> = {
    ...(init.token === undefined ? {} : { [TOKEN_HEADER]: init.token }),
    ...init.headers,
  };
  let payload: Buffer | undefined;
  if (init.body !== undefined) {
    if (typeof init.body === 'string') {
      payload = Buffer.from(init.body);
    } else {
      payload = Buffer.from(JSON.stringify(init.body));
      if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/json';
      }
    }
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: init.method ?? 'GET', headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
