/**
 * What contract's `NOT NULL` will meet: required new columns (the entity's field is
 * neither optional nor nullable) whose old source columns can hold NULL. With NULLs there
 * already, the backfill copies them and contract's validation fails; a nullable source
 * alone is worth knowing. Preflight reports these as findings, plan under its contract
 * phase.
 */
import type { z } from 'zod';
import { loadTableCatalog } from '../catalog/index.js';
import type { Queryable } from '../kernel/index.js';
import type { Migration } from '../model/index.js';

/** NULLs counted in an old column, at most one more than this (the count stops there). */
export const NULL_COUNT_CAP = 1000;

/** A required new column fed by a nullable old one. */
export interface NullableSource {
  /** The old column, `table.column`. */
  readonly at: string;
  readonly oldColumn: string;
  /** The new columns contract makes `NOT NULL`, comma-separated. */
  readonly targets: string;
  /** NULLs in the old column now, up to {@link NULL_COUNT_CAP} + 1. */
  readonly nulls: number;
  /** One sentence: what will happen, and how to resolve it. */
  readonly message: string;
}

/** The nullable sources of `migration`'s required new columns, read off the catalog and the table. */
export async function nullableSources(db: Queryable, migration: Migration): Promise<NullableSource[]> {
  const table = migration.table.table;
  const main = await loadTableCatalog(db, table);
  if (!main.exists) return [];
  const shape = migration.table.entity.shape as Record<string, z.ZodType>;
  const found: NullableSource[] = [];
  for (const mapping of migration.mappings) {
    const required = mapping.newColumns.filter((_, index) => {
      const field = shape[mapping.fields[index]!];
      return field !== undefined && !field.isOptional() && !field.isNullable();
    });
    if (required.length === 0) continue;
    const targets = required.map((column) => column.name).join(', ');
    for (const old of mapping.oldColumns) {
      const column = main.columns.get(old.name);
      if (column === undefined || column.notNull) continue;
      const at = `${table.display}.${old.name}`;
      const { rows } = await db.query<{ n: unknown }>(
        `SELECT count(*) AS n FROM (SELECT 1 FROM ${table.quoted} WHERE ${old.quoted} IS NULL LIMIT ${NULL_COUNT_CAP + 1}) AS nulls`,
      );
      const nulls = Number(rows[0]?.n ?? 0);
      const message =
        nulls > 0
          ? `contract makes ${targets} NOT NULL (the field is required), but ${at} holds NULL in ${
              nulls > NULL_COUNT_CAP ? `more than ${NULL_COUNT_CAP}` : nulls
            } row${nulls === 1 ? '' : 's'}: the backfill copies them and contract's validation will fail; fill them (UPDATE ${table.display} SET ${old.name} = ... WHERE ${old.name} IS NULL) before contract, or declare the field nullable in the entity schema`
          : `contract makes ${targets} NOT NULL (the field is required), and ${at} is nullable: it holds no NULL now, but one written before contract would make it fail; add NOT NULL to ${old.name}, or declare the field nullable`;
      found.push({ at, oldColumn: old.name, targets, nulls, message });
    }
  }
  return found;
}
