/**
 * The application of part 4 in a process of its own: a steady load ({@link startLoad})
 * through the SDK, driven over IPC by {@link startLoadProcess}. Users run a backfill from
 * the CLI, not inside their application, so the backfill's (or the keyset loop's) own
 * JavaScript, its garbage collections and the async context tracking its transactions
 * switch on never hold up the application's event loop; the load shares with them only
 * the machine and the database, as it would in production.
 */
import pg from 'pg';
import { usersMigration, usersRepository } from './fixture.js';
import { type LoadProcessOptions, type LoadRequest, type LoadResponse, startLoad } from './load.js';

const options = JSON.parse(process.argv[2] ?? '{}') as LoadProcessOptions;
const pool = new pg.Pool({ connectionString: options.connectionString, max: options.connections });
pool.on('error', () => undefined);
const repo = usersRepository(usersMigration(options.schema), pool, 'dualwrite');
let load: ReturnType<typeof startLoad> | undefined;

async function handle(request: LoadRequest): Promise<LoadResponse> {
  switch (request.type) {
    case 'check':
      await repo.check();
      return { id: request.id };
    case 'start':
      load = startLoad(repo, { rate: options.rate, rows: options.rows });
      return { id: request.id };
    case 'measure':
      load!.measure();
      return { id: request.id };
    case 'take':
      return { id: request.id, summary: await load!.take() };
    case 'stop':
      await load?.stop();
      repo.close();
      await pool.end();
      return { id: request.id };
  }
}

process.on('message', (request: LoadRequest) => {
  handle(request).then(
    (response) => {
      process.send!(response, () => {
        if (request.type === 'stop') process.disconnect();
      });
    },
    (error: unknown) => process.send!({ id: request.id, error: String((error as Error)?.stack ?? error) }),
  );
});
