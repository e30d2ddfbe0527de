/**
 * PostgreSQL's own parser for the SQL router: `libpg-query` (the server's grammar compiled
 * to WASM) and `pgsql-deparser`, both optional peer dependencies, loaded on first use.
 */
import { ConfigurationError } from '../../src/index.js';
import type { SqlNode, SqlParser } from '../../src/internal.js';

let loading: Promise<SqlParser> | undefined;

/**
 * Loads the parser once per process. Rejects with a {@link ConfigurationError} naming the
 * packages to install when they are missing.
 */
export function loadSqlParser(): Promise<SqlParser> {
  loading ??= (async () => {
    let parserModule: typeof import('libpg-query');
    let deparserModule: typeof import('pgsql-deparser');
    try {
      [parserModule, deparserModule] = await Promise.all([import('libpg-query'), import('pgsql-deparser')]);
    } catch (error) {
      loading = undefined;
      throw new ConfigurationError(
        `flagshift/sql needs the optional peer dependencies libpg-query and pgsql-deparser: npm install libpg-query pgsql-deparser (${(error as Error).message})`,
      );
    }
    await parserModule.loadModule();
    return {
      parse: (sql: string) => parserModule.parseSync(sql) as unknown as ReturnType<SqlParser['parse']>,
      deparse: (node: SqlNode) => deparserModule.deparseSync(node as never, { pretty: false }),
    };
  })();
  return loading;
}
