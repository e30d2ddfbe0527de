/**
 * A table definition: the physical table, its primary key and the logical entity that
 * application code sees. Application code never names physical columns.
 */
import { z } from 'zod';
import { ConfigurationError, firstIssue, previewValue, safeString } from '../kernel/index.js';
import { type ColumnCodec, columnCodec, type LogicalKind, logicalKindOf } from './column-codec.js';
import { identifierProblem, parseQualifiedName, type QualifiedName, sqlTypeProblem } from './identifiers.js';

/** A logical entity schema: a zod object. */
export type EntitySchema = z.ZodObject<z.ZodRawShape>;

/** Where a plain (not migrated) field lives. */
export interface ColumnOptions {
  /** Physical column name. @default the field name */
  readonly column?: string;
  /** SQL type, used for parameter casts. @default unknown (the driver's value is trusted) */
  readonly type?: string;
}

/** Options of {@link defineTable}. */
export interface TableOptions<S extends EntitySchema, K extends keyof z.infer<S> & string = keyof z.infer<S> & string> {
  /** Table name, optionally schema-qualified: `users` or `app.users`. */
  readonly name: string;
  /** Logical field(s) of the primary key. */
  readonly key: K | readonly K[];
  /** The logical entity. Its fields are what application code reads and writes. */
  readonly entity: S;
  /**
   * Physical column names (or name and type) of fields whose column differs from the
   * field name. Migrated fields are described by their migration instead.
   * @default every field is stored in a column of the same name
   */
  readonly columns?: { readonly [F in keyof z.infer<S>]?: string | ColumnOptions };
}

/** A column bound to its codec, ready for SQL. */
export interface BoundColumn {
  readonly name: string;
  /** `"name"`. */
  readonly quoted: string;
  readonly type: string | undefined;
  readonly codec: ColumnCodec;
}

/** A validated table definition. Create with {@link defineTable}. */
export interface TableDefinition<S extends EntitySchema = EntitySchema, K extends string = string> {
  readonly kind: 'table';
  readonly table: QualifiedName;
  readonly entity: S;
  readonly keyFields: readonly K[];
  readonly fields: readonly string[];
  readonly fieldKinds: Readonly<Record<string, LogicalKind>>;
  /** Column of each field when it is not migrated. */
  readonly columns: Readonly<Record<string, BoundColumn>>;
  /** Full-entity schema for inserts and upserts: unknown fields are errors. */
  readonly writeSchema: z.ZodType<z.infer<S>>;
  /** Partial schema for updates and filters: unknown fields are errors. */
  readonly patchSchema: z.ZodType<Partial<z.infer<S>>>;
}

/** The entity type of a table definition. */
export type EntityOf<T> = T extends TableDefinition<infer S, string> ? z.infer<S> : never;

/**
 * Defines a table and its logical entity.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { defineTable } from 'flagshift';
 *
 * const users = defineTable({
 *   name: 'public.users',
 *   key: 'id',
 *   entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
 * });
 * ```
 */
export function defineTable<S extends EntitySchema, const K extends keyof z.infer<S> & string>(
  options: TableOptions<S, K>,
): TableDefinition<S, K> {
  const name = (options as { name?: unknown } | null)?.name;
  const where = `table ${JSON.stringify(safeString(name))}`;
  const parsed = tableOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const { path, value, message } = firstIssue(parsed.error, options);
    const shown =
      path !== '' && value !== undefined && typeof value !== 'function' && typeof value !== 'object'
        ? ` (got ${previewValue(value)})`
        : '';
    throw new ConfigurationError(`${where}: ${path || 'options'}: ${message}${shown}`, { path });
  }
  let table: QualifiedName;
  try {
    table = parseQualifiedName(options.name, `${where}: name`);
  } catch (error) {
    throw new ConfigurationError((error as Error).message, { path: 'name' });
  }
  const shape = options.entity.shape;
  const fields = Object.keys(shape);
  const keyFields: K[] = typeof options.key === 'string' ? [options.key as K] : [...(options.key as readonly K[])];
  if (keyFields.length === 0) throw new ConfigurationError(`${where}: key: needs at least one field`, { path: 'key' });
  for (const [index, key] of keyFields.entries()) {
    if (keyFields.indexOf(key) !== index) {
      throw new ConfigurationError(`${where}: key: field ${JSON.stringify(key)} is listed twice`, { path: 'key' });
    }
    if (!fields.includes(key)) {
      throw new ConfigurationError(`${where}: key: field ${JSON.stringify(key)} is not a field of the entity`, {
        path: 'key',
      });
    }
  }
  const fieldKinds: Record<string, LogicalKind> = {};
  const columns: Record<string, BoundColumn> = {};
  for (const field of fields) {
    const kind = logicalKindOf(shape[field] as z.ZodType);
    fieldKinds[field] = kind;
    const spec = options.columns?.[field as keyof typeof options.columns] as string | ColumnOptions | undefined;
    const name = typeof spec === 'string' ? spec : (spec?.column ?? field);
    const type = typeof spec === 'string' ? undefined : spec?.type;
    const problem = identifierProblem(name);
    if (problem !== undefined) {
      throw new ConfigurationError(
        `${where}: column of field ${JSON.stringify(field)}: ${JSON.stringify(name)} ${problem}`,
        {
          path: `columns.${field}`,
        },
      );
    }
    if (type !== undefined) {
      const typeProblem = sqlTypeProblem(type);
      if (typeProblem !== undefined) {
        throw new ConfigurationError(
          `${where}: type of column ${JSON.stringify(name)}: ${JSON.stringify(type)} ${typeProblem}`,
          {
            path: `columns.${field}.type`,
          },
        );
      }
    }
    columns[field] = { name, quoted: `"${name}"`, type, codec: columnCodec(type, kind) };
  }
  for (const field of Object.keys(options.columns ?? {})) {
    if (!fields.includes(field)) {
      throw new ConfigurationError(`${where}: columns: ${JSON.stringify(field)} is not a field of the entity`, {
        path: `columns.${field}`,
      });
    }
  }
  return Object.freeze({
    kind: 'table' as const,
    table,
    entity: options.entity,
    keyFields: Object.freeze(keyFields),
    fields: Object.freeze(fields),
    fieldKinds: Object.freeze(fieldKinds),
    columns: Object.freeze(columns),
    writeSchema: options.entity.strict() as unknown as z.ZodType<z.infer<S>>,
    patchSchema: options.entity.partial().strict() as unknown as z.ZodType<Partial<z.infer<S>>>,
  });
}

const tableOptionsSchema = z.object({
  name: z.string().min(1),
  key: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  entity: z.custom<EntitySchema>(
    (value) => defOf(value) === 'object',
    'must be a zod object schema, e.g. z.object({ id: z.number() })',
  ),
  columns: z
    .record(z.string(), z.union([z.string(), z.object({ column: z.string().optional(), type: z.string().optional() })]))
    .optional(),
});

function defOf(value: unknown): string | undefined {
  return (value as { _zod?: { def?: { type?: string } } } | null)?._zod?.def?.type;
}
