/**
 * What the data steps (backfill, verification, pre-flight) know about one migration once
 * it is checked against the catalog: its key, the new columns with their forward forms,
 * the side tables. Built by `inspectMigration`, read by every SQL builder of this folder.
 */
import type { TableCatalog } from '../../catalog/index.js';
import type { BoundColumn, Migration, QualifiedName } from '../../model/index.js';

/** A key column with its catalog type, for casting key text back to the column's type. */
export interface KeyColumn {
  readonly name: string;
  readonly quoted: string;
  readonly type: string;
}

/** A new column and the SQL computing it from the old columns under some alias. */
export interface TargetColumn {
  readonly column: BoundColumn;
  /** Catalog type of the new column: the forward form is cast to it, so what is written is what is compared. */
  readonly type: string;
  readonly forward: (alias: string) => string;
}

/**
 * A new column in the main table. Its mapping's transforms may lose information one way
 * (a split's parts can't all be told apart in the joined text: `firstName: 'Mary Ann'`,
 * `lastName: 'Evans'` leaves `name` 'Mary Ann Evans', which splits as 'Mary' + 'Ann
 * Evans'); then `held` says when the row's new side stands as written.
 */
export interface SameRowTarget extends TargetColumn {
  /**
   * SQL over an alias, true when the new columns of this target's mapping stand as stored:
   * they equal forward(old), or, for a mapping other than a rename, they are not all NULL
   * and the old columns are exactly backward(new), as an SDK dual write or a sync trigger
   * leaves them. The backfill never takes forward(old) over such a row, and verification
   * counts it as agreeing. `undefined` for a rename, whose transforms lose nothing.
   */
  readonly held: ((alias: string) => string) | undefined;
}

/** A side table receiving the new columns of cross-table mappings. */
export interface SideTarget {
  readonly table: QualifiedName;
  /** Side key columns, in the main key's order. */
  readonly keyColumns: readonly BoundColumn[];
  readonly columns: readonly TargetColumn[];
}

/** Everything a data step needs about one migration, checked against the catalog. */
export interface DataPlan {
  readonly migration: Migration;
  readonly table: QualifiedName;
  readonly key: readonly KeyColumn[];
  /** New columns in the main table. */
  readonly sameRow: readonly SameRowTarget[];
  readonly sides: readonly SideTarget[];
  /** Old columns read by side targets (carried through the batch). */
  readonly sideOldColumns: readonly BoundColumn[];
}

/** One thing that stops a data step on this database, found by {@link inspectMigration}. */
export interface PlanProblem {
  readonly code: 'table-missing' | 'columns-missing' | 'key-not-unique' | 'side-key-not-unique';
  readonly message: string;
  /** Columns (`table.column`) concerned, for `columns-missing`. */
  readonly columns?: readonly string[];
}

/** What the catalog says about a migration's tables. */
export interface MigrationInspection {
  readonly main: TableCatalog;
  readonly sides: readonly TableCatalog[];
  readonly problems: readonly PlanProblem[];
  /** Set when there are no problems. */
  readonly plan: DataPlan | undefined;
}
