/**
 * A dedicated `LISTEN` session on the flags channel, over a node-postgres pool (on a
 * connection of the provider's own) or PGlite.
 * The provider reopens it when it is lost; this file only opens, watches and closes one.
 */

/** A notification as node-postgres delivers it. */
export interface NotificationLike {
  readonly channel: string;
  readonly payload?: string | undefined;
}

/** A connection checked out of a pool that can `LISTEN`: a `pg.PoolClient`. */
export interface ListenClientLike {
  /** Runs one statement. */
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  /** Returns the client to its pool; with an error, discards it. */
  release(err?: Error | boolean): void;
  /** Hears a `NOTIFY` on a channel this client listens to. */
  on(event: 'notification', listener: (message: NotificationLike) => void): unknown;
  /** Hears the connection fail. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Hears the connection end. */
  on(event: 'end', listener: () => void): unknown;
}

/** A connection of its own, as `pg.Client` opens one: what the provider listens on. */
export interface ListenOwnClientLike extends Omit<ListenClientLike, 'release'> {
  connect(): Promise<unknown>;
  end(): Promise<void>;
}

/**
 * The part of a `pg.Pool` the provider needs: statements, and a connection to listen on.
 * A `pg.Pool` also carries its `Client` class and connection `options`: the provider then
 * opens a connection of its own for `LISTEN` instead of holding one of the pool's.
 */
export interface ListenPoolLike {
  /** Runs one statement on any pooled client. */
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  /** Checks a client out of the pool, to hold `LISTEN`. */
  connect(): Promise<ListenClientLike>;
  readonly Client?: new (options: unknown) => ListenOwnClientLike;
  readonly options?: unknown;
}

/** How long opening the provider's own connection may take when the pool sets no limit. */
const OWN_CONNECT_TIMEOUT_MS = 10_000;

/** A connection to listen on, and how to wait until it is given up. */
interface ListenConnection {
  readonly client: ListenClientLike;
  /** Resolves once a released connection has ended (at once for a pooled one). */
  ended(): Promise<void>;
}

/**
 * A connection to listen on: a new one with the pool's own settings where the pool says
 * how to open one (a `pg.Pool`), so the application's pool never lends the provider a
 * slot and ending either never waits for the other; else one checked out of the pool.
 */
async function listenConnection(pool: ListenPoolLike): Promise<ListenConnection> {
  if (typeof pool.Client !== 'function' || typeof pool.options !== 'object' || pool.options === null) {
    const client = await pool.connect();
    return { client, ended: async () => undefined };
  }
  const settings = pool.options as { connectionTimeoutMillis?: number };
  const client = new pool.Client({
    ...settings,
    connectionTimeoutMillis: settings.connectionTimeoutMillis || OWN_CONNECT_TIMEOUT_MS,
  });
  // Errors before connect() settles reach the caller through connect(); later ones the
  // session's own listener handles.
  client.on('error', () => undefined);
  let ending: Promise<void> | undefined;
  const end = () => {
    ending ??= client.end().catch(() => undefined);
    return ending;
  };
  try {
    await client.connect();
  } catch (error) {
    await end();
    throw error;
  }
  return {
    client: Object.assign(client, {
      release() {
        void end();
      },
    }),
    ended: () => ending ?? Promise.resolve(),
  };
}

/** The part of a PGlite instance the provider needs. */
export interface ListenPgliteLike {
  /** Runs one statement. */
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; affectedRows?: number; rowCount?: number }>;
  /** Runs `fn` in a transaction. */
  transaction<T>(
    fn: (tx: {
      query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; affectedRows?: number; rowCount?: number }>;
    }) => Promise<T>,
  ): Promise<T>;
  /** Listens on `channel`; resolves to the function that stops listening. */
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
}

/** An open `LISTEN` session. */
export interface ListenSession {
  /**
   * Runs a read on the session's own connection: the provider's reloads never wait for a
   * slot of the application's pool, and after a reconnect they go through the connection
   * just opened rather than pooled ones that may have died with the server.
   */
  query(sql: string): Promise<{ rows: unknown[] }>;
  /** Checks the session still answers; rejects (and reports it lost) when it does not. */
  ping(): Promise<void>;
  /** Stops listening and gives the connection up. */
  close(): Promise<void>;
}

/** Opens `LISTEN` sessions on one channel. */
export interface ListenSource {
  open(onNotification: (payload: string) => void, onLost: (error: Error) => void): Promise<ListenSession>;
}

/** `LISTEN` on a connection of `pool`'s (see {@link listenConnection}), held until the session closes or is lost. */
export function poolListenSource(pool: ListenPoolLike, channel: string, quoted: string): ListenSource {
  return {
    async open(onNotification, onLost) {
      const { client, ended } = await listenConnection(pool);
      let done = false;
      const lose = (error: Error) => {
        if (done) return;
        done = true;
        // With an error, the pool destroys the connection instead of reusing it.
        client.release(error);
        onLost(error);
      };
      // The listeners stay attached after the session ends: a later 'error' on a connection
      // nobody listens to would crash the process.
      client.on('notification', (message) => {
        if (!done && message.channel === channel) onNotification(message.payload ?? '');
      });
      client.on('error', (error) => lose(error));
      client.on('end', () => lose(new Error('the LISTEN connection ended')));
      try {
        await client.query(`LISTEN ${quoted}`);
      } catch (error) {
        if (!done) {
          done = true;
          client.release(error instanceof Error ? error : true);
        }
        throw error;
      }
      return {
        async query(sql) {
          if (done) throw new Error('the LISTEN connection is closed');
          return (await client.query(sql)) as { rows: unknown[] };
        },
        async ping() {
          if (done) throw new Error('the LISTEN connection is closed');
          try {
            await client.query('SELECT 1');
          } catch (error) {
            lose(error instanceof Error ? error : new Error(String(error)));
            throw error;
          }
        },
        async close() {
          if (done) return;
          done = true;
          // Destroyed, not returned: a pooled connection would stay subscribed to the channel.
          client.release(true);
          await ended();
        },
      };
    },
  };
}

/** `LISTEN` on a PGlite instance. It has one in-process session, which is never lost. */
export function pgliteListenSource(pglite: ListenPgliteLike, quoted: string): ListenSource {
  return {
    async open(onNotification) {
      const unlisten = await pglite.listen(quoted, onNotification);
      return {
        query: (sql) => pglite.query(sql),
        async ping() {},
        close: () => unlisten(),
      };
    },
  };
}

/**
 * A `pg_stat_activity` condition that finds the providers' `LISTEN` connections (for
 * operators, tests and the benchmark): `query` shows a connection's last statement, which
 * on a LISTEN connection is the `LISTEN` or a reload of the whole table (no other
 * connection reads the whole table, save a provider reloading while it has none).
 */
export const LISTEN_ACTIVITY = `(query LIKE 'LISTEN %' OR query LIKE 'SELECT key, value, updated_at, updated_by FROM % ORDER BY key')`;
