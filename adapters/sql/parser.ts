/**
 * PostgreSQL's own parser for the SQL router: `libpg-query` (the server's grammar compiled
 * to WASM) and `pgsql-deparser`, both optional peer dependencies, loaded with the entry
 * point; the WASM module itself is instantiated on first use.
 */
import type { SqlNode, SqlParser } from '../../src/internal.js';
import { libpgQuery, pgsqlDeparser } from './peer.js';

let loading: Promise<SqlParser> | undefined;

/** Loads the parser once per process: instantiates libpg-query's WASM module. */
export function loadSqlParser(): Promise<SqlParser> {
  loading ??= (async () => {
    try {
      await libpgQuery.loadModule();
    } catch (error) {
      loading = undefined;
      throw error;
    }
    return {
      parse: (sql: string) => libpgQuery.parseSync(sql) as unknown as ReturnType<SqlParser['parse']>,
      deparse: (node: SqlNode) => pgsqlDeparser.deparseSync(node as never, { pretty: false }),
    };
  })();
  return loading;
}
