/**
 * A driver that records every statement it is asked to run before passing it on to a real
 * driver: the proof that a rejected definition or input executed nothing.
 */
import type { Driver, Queryable } from '../../src/kernel/driver.js';

/** A statement the wrapped driver was asked to run. */
export interface RecordedStatement {
  readonly sql: string;
  readonly params: readonly unknown[];
  /** `session` or `transaction` when issued inside one. */
  readonly scope: 'query' | 'transaction' | 'session';
}

/** A recording driver and what it recorded. */
export interface RecordingDriver extends Driver {
  readonly statements: RecordedStatement[];
  /** Statements that change data or schema (anything but SELECT/BEGIN/COMMIT/ROLLBACK/SET/SHOW). */
  writes(): RecordedStatement[];
  clear(): void;
}

const READ_ONLY = /^\s*(SELECT|WITH\s+[\s\S]*?\bSELECT|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|RESET|SHOW)\b/i;

/** Wraps `inner`, recording every statement, including those inside transactions and sessions. */
export function recordingDriver(inner: Driver): RecordingDriver {
  const statements: RecordedStatement[] = [];
  const wrap = (db: Queryable, scope: RecordedStatement['scope']): Queryable => ({
    query(sql, params) {
      statements.push({ sql, params: params ?? [], scope });
      return db.query(sql, params);
    },
  });
  return {
    name: `recording(${inner.name})`,
    supportsConcurrentQueries: inner.supportsConcurrentQueries,
    statements,
    query(sql, params) {
      statements.push({ sql, params: params ?? [], scope: 'query' });
      return inner.query(sql, params);
    },
    transaction: (fn) => inner.transaction((tx) => fn(wrap(tx, 'transaction'))),
    session: (fn) => inner.session((connection) => fn(wrap(connection, 'session'))),
    writes: () => statements.filter((statement) => !READ_ONLY.test(statement.sql)),
    clear() {
      statements.length = 0;
    },
  };
}
