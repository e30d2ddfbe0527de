/**
 * What the catalog readers of this folder return: one set of types for a table's columns,
 * indexes, constraints and triggers, whichever step reads them.
 */
import type { QualifiedName } from '../model/index.js';

/** A column as the catalog describes it. */
export interface CatalogColumn {
  readonly name: string;
  /** Its number in the table (`pg_attribute.attnum`), as index keys refer to it. */
  readonly attnum: number;
  /** `format_type` of the column: valid SQL for the type, e.g. `character varying(20)`. */
  readonly type: string;
  readonly notNull: boolean;
  /** The default expression (`pg_get_expr`), or `undefined` when the column has none. */
  readonly default: string | undefined;
}

/** An index of a table. */
export interface CatalogIndex {
  readonly name: string;
  readonly primary: boolean;
  readonly unique: boolean;
  /** False for what an interrupted `CREATE INDEX CONCURRENTLY` left behind. */
  readonly valid: boolean;
  /** Whether it has a `WHERE` clause or expressions (it can't serve as a plain unique key). */
  readonly partial: boolean;
  /** Key columns in index order; `undefined` for an expression entry. */
  readonly columns: readonly (string | undefined)[];
  /** `INCLUDE` columns, in order. */
  readonly included: readonly string[];
}

/** A constraint of a table. */
export interface CatalogConstraint {
  readonly name: string;
  /** `c` check, `f` foreign key, `p` primary key, `u` unique, ... (pg_constraint.contype). */
  readonly type: string;
  readonly validated: boolean;
  /** For a foreign key: the oid of the referenced table. */
  readonly references: number | undefined;
}

/** One table in the catalog, or `exists: false` with empty collections. */
export interface TableCatalog {
  readonly table: QualifiedName;
  readonly exists: boolean;
  /** pg_class oid. */
  readonly oid: number | undefined;
  /** The schema the table was found in (through the search path when the name is unqualified). */
  readonly schema: string | undefined;
  /** By name, in column order. */
  readonly columns: ReadonlyMap<string, CatalogColumn>;
  /** Names of the table's triggers (not the internal ones of constraints). */
  readonly triggers: ReadonlySet<string>;
  /** Names of those of {@link triggers} that have a `WHEN` condition. */
  readonly conditionalTriggers: ReadonlySet<string>;
  /**
   * Names of those of {@link triggers} whose firing was changed after they were created
   * (`ALTER TABLE ... DISABLE TRIGGER`, or `ENABLE REPLICA` / `ENABLE ALWAYS`).
   */
  readonly refiredTriggers: ReadonlySet<string>;
  /** By name, in name order. */
  readonly indexes: ReadonlyMap<string, CatalogIndex>;
  readonly constraints: ReadonlyMap<string, CatalogConstraint>;
}

/** Column names per quoted table name; `null` for a table that does not exist. */
export type ColumnSets = ReadonlyMap<string, ReadonlySet<string> | null>;

/** How the database fills a column an insert leaves out: its default, `serial`'s or an identity's next value. */
export interface ColumnGenerator {
  /** An SQL expression that computes the value, e.g. `nextval('users_id_seq'::regclass)` or `gen_random_uuid()`. */
  readonly sql: string;
  /** `GENERATED ALWAYS AS IDENTITY`: an insert that supplies the value needs `OVERRIDING SYSTEM VALUE`. */
  readonly always: boolean;
}

/** The columns of several tables, and the generators of those the database fills by itself. */
export interface ColumnFacts {
  readonly sets: ColumnSets;
  /** Per quoted table name, per column: its generator. Columns without one are absent. */
  readonly generators: ReadonlyMap<string, ReadonlyMap<string, ColumnGenerator>>;
}

/** The source (`prosrc`) of each function asked for, by its SQL name; `undefined` for one that doesn't exist. */
export type FunctionSources = ReadonlyMap<string, string | undefined>;
