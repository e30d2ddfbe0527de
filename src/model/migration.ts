/**
 * A migration: which logical fields of a table move from old physical columns to new
 * ones, how values convert, which flags drive it and how old and new are compared.
 */
import { z } from 'zod';
import { ConfigurationError, firstIssue, previewValue, safeString } from '../kernel/index.js';
import type { CompareOptions } from '../shadow/index.js';
import { columnCodec, isTextType, type LogicalKind } from './column-codec.js';
import { identifierProblem, parseQualifiedName, type QualifiedName, sqlTypeProblem } from './identifiers.js';
import type { MappingKind, MappingSpec } from './mappings.js';
import { STAGES, type Stage } from './stages.js';
import type { BoundColumn, EntitySchema, TableDefinition } from './table.js';

/** How flags are evaluated. */
export type FlagEvaluation = 'per-migration' | 'per-entity';

/** Options of {@link defineMigration}. */
export interface MigrationOptions<S extends EntitySchema, K extends string> {
  /** Unique name: lowercase letters, digits, `.`, `_`, `-`; at most 63 characters. */
  readonly name: string;
  readonly table: TableDefinition<S, K>;
  /** Field mappings from the helpers: `rename`, `changeType`, `split`, `merge`, `moveColumn`, `customMapping`. */
  readonly mappings: readonly MappingSpec[];
  /**
   * Stage used when the flag system fails and this process has no last known decision.
   * Set it to the stage you have rolled out to, so an outage never stops dual writes.
   */
  readonly defaultStage: Stage;
  /** Human description, shown by the CLI. @default '' */
  readonly description?: string;
  readonly flags?: {
    /** String flag holding the stage. @default `flagshift.<name>.stage` */
    readonly stage?: string;
    /** Number flag (0-100) holding the read percentage in `live`. @default `flagshift.<name>.read-percent` */
    readonly percent?: string;
    /** Percentage used when the percent flag fails with no last known value. @default 0 */
    readonly defaultPercent?: number;
    /**
     * `per-migration`: flags are evaluated once per migration (and per context targeting
     * key when one is given) and entities are bucketed locally: fast, the usual choice.
     * `per-entity`: flags are evaluated with each entity's key as the targeting key, for
     * providers that split traffic themselves (flagd `fractional`, LaunchDarkly rules).
     * @default 'per-migration'
     */
    readonly evaluation?: FlagEvaluation;
  };
  readonly compare?: CompareOptions & {
    /** Compare one read in N. @default 1 */
    readonly sampleOneIn?: number;
    /** Cross-table migrations: run the shadow read at all for one read in N. @default 1 */
    readonly shadowReadOneIn?: number;
    /** Put raw values (not hashes) in mismatch samples. @default false */
    readonly rawValues?: boolean;
  };
}

/** A table the new columns of a cross-table mapping live in. */
export interface SideTable {
  readonly table: QualifiedName;
  /** Key columns of the side table, in the main key's order. */
  readonly keyColumns: readonly BoundColumn[];
}

/** A side table with the cross-table mappings whose new columns it holds. */
export interface SideTableGroup extends SideTable {
  readonly mappings: readonly BoundMapping[];
}

/** A mapping bound to its table: columns have codecs, fields are checked. */
export interface BoundMapping {
  readonly kind: MappingKind;
  readonly fields: readonly string[];
  readonly oldColumns: readonly BoundColumn[];
  readonly newColumns: readonly BoundColumn[];
  /** Set when the new columns live in another table. */
  readonly newTable: SideTable | undefined;
  /** The mapping's `forward(old)`: new values from old ones. */
  readonly forward: ((old: readonly unknown[]) => unknown[]) | undefined;
  /** The mapping's `backward(new)`: old values from new ones. */
  readonly backward: ((values: readonly unknown[]) => unknown[]) | undefined;
  readonly sql: MappingSpec['sql'];
  readonly spec: MappingSpec;
}

/** A validated migration. Create with {@link defineMigration}. */
export interface Migration<S extends EntitySchema = EntitySchema, K extends string = string> {
  readonly kind: 'migration';
  readonly name: string;
  readonly description: string;
  readonly table: TableDefinition<S, K>;
  readonly mappings: readonly BoundMapping[];
  /** Every logical field this migration maps. */
  readonly fields: readonly string[];
  readonly defaultStage: Stage;
  readonly stageFlagKey: string;
  readonly percentFlagKey: string;
  readonly defaultPercent: number;
  readonly evaluation: FlagEvaluation;
  readonly compare: CompareOptions;
  readonly sampleOneIn: number;
  readonly shadowReadOneIn: number;
  readonly rawValues: boolean;
  /** Whether any mapping keeps its new columns in another table. */
  readonly crossTable: boolean;
  /** The tables the cross-table mappings' new columns live in, in order of first appearance. */
  readonly sideTables: readonly SideTableGroup[];
}

const columnRefSchema = z.object({ column: z.string(), type: z.string().optional() });
const optionsSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9._-]{0,62}$/,
      'must be 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit',
    ),
  table: z.custom<TableDefinition>(
    (value) => (value as { kind?: unknown } | null)?.kind === 'table',
    'must come from defineTable()',
  ),
  mappings: z
    .array(
      z.object({
        kind: z.enum(['rename', 'change-type', 'split', 'merge', 'move', 'custom']),
        fields: z.array(z.string()).min(1),
        old: z.array(columnRefSchema).min(1),
        new: z.array(columnRefSchema).min(1),
        newTable: z.object({ name: z.string(), key: z.array(z.string()).optional() }).optional(),
        forward: z.function().optional(),
        backward: z.function().optional(),
        separator: z.string().min(1, 'must not be empty: the parts could not be told apart when read back').optional(),
      }),
      'must be a list of mappings from rename(), changeType(), split(), merge(), moveColumn() or customMapping()',
    )
    .min(1),
  defaultStage: z.enum(STAGES, `must be one of ${STAGES.join(', ')}`),
  description: z.string().optional(),
  flags: z
    .object({
      stage: z.string().min(1).max(200).optional(),
      percent: z.string().min(1).max(200).optional(),
      defaultPercent: z.number().min(0).max(100).optional(),
      evaluation: z.enum(['per-migration', 'per-entity']).optional(),
    })
    .strict()
    .optional(),
  compare: z
    .object({
      comparator: z.function().optional(),
      normalize: z.function().optional(),
      ignore: z.union([z.array(z.string()), z.function()]).optional(),
      sampleOneIn: z.number().int().min(1).optional(),
      shadowReadOneIn: z.number().int().min(1).optional(),
      rawValues: z.boolean().optional(),
    })
    .strict()
    .optional(),
});

/**
 * Defines a migration. Everything is validated now: a bad definition throws a
 * {@link ConfigurationError} naming the migration, the path and the value.
 *
 * @example
 * ```ts
 * import { defineMigration, rename } from 'flagshift';
 *
 * export const usernameRename = defineMigration({
 *   name: 'users-username',
 *   table: users,
 *   mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
 *   defaultStage: 'off',
 * });
 * ```
 */
export function defineMigration<S extends EntitySchema, K extends string>(
  options: MigrationOptions<S, K>,
): Migration<S, K> {
  const name = (options as { name?: unknown } | null)?.name;
  const label = `migration ${JSON.stringify(safeString(name))}`;
  const fail = (path: string, message: string): never => {
    throw new ConfigurationError(`${label}: ${path}: ${message}`, { path });
  };
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const { path, value, message } = firstIssue(parsed.error, options);
    fail(path || 'options', `${message}${path === '' ? '' : ` (got ${previewValue(value, 80)})`}`);
  }
  const table = options.table;
  const seen = new Map<string, number>();
  const mappings = options.mappings.map((spec, index) => bindMapping(spec, table, `mappings.${index}`, fail));
  for (const [index, mapping] of mappings.entries()) {
    for (const field of mapping.fields) {
      const earlier = seen.get(field);
      if (earlier !== undefined)
        fail(`mappings.${index}.fields`, `field "${field}" is already mapped by mappings.${earlier}`);
      if ((table.keyFields as readonly string[]).includes(field))
        fail(`mappings.${index}.fields`, `field "${field}" is part of the key and can't be migrated`);
      seen.set(field, index);
    }
  }
  const owners = new Map<string, string>();
  for (const field of table.fields) {
    if (!seen.has(field)) owners.set(table.columns[field]!.name, `field "${field}"`);
  }
  for (const [index, mapping] of mappings.entries()) {
    const columns = mapping.newTable ? mapping.oldColumns : [...mapping.oldColumns, ...mapping.newColumns];
    for (const column of columns) {
      const owner = owners.get(column.name);
      if (owner !== undefined) {
        fail(
          `mappings.${index}`,
          `column "${column.name}" is already used by ${owner} of table ${table.table.display}`,
        );
      }
      owners.set(column.name, `mappings.${index}`);
    }
  }
  const flags = options.flags ?? {};
  const stageFlagKey = flags.stage ?? `flagshift.${options.name}.stage`;
  const percentFlagKey = flags.percent ?? `flagshift.${options.name}.read-percent`;
  if (stageFlagKey === percentFlagKey) {
    fail(
      flags.percent === undefined ? 'flags.stage' : 'flags.percent',
      `the stage flag and the percent flag are both ${JSON.stringify(stageFlagKey)}; they need a key each`,
    );
  }
  const compare = options.compare ?? {};
  return Object.freeze({
    kind: 'migration' as const,
    name: options.name,
    description: options.description ?? '',
    table,
    mappings: Object.freeze(mappings),
    fields: Object.freeze(mappings.flatMap((mapping) => mapping.fields)),
    defaultStage: options.defaultStage,
    stageFlagKey,
    percentFlagKey,
    defaultPercent: flags.defaultPercent ?? 0,
    evaluation: flags.evaluation ?? 'per-migration',
    compare: {
      ...(compare.comparator ? { comparator: compare.comparator } : {}),
      ...(compare.normalize ? { normalize: compare.normalize } : {}),
      ...(compare.ignore ? { ignore: compare.ignore } : {}),
    },
    sampleOneIn: compare.sampleOneIn ?? 1,
    shadowReadOneIn: compare.shadowReadOneIn ?? 1,
    rawValues: compare.rawValues ?? false,
    crossTable: mappings.some((mapping) => mapping.newTable !== undefined),
    sideTables: Object.freeze(groupSideTables(mappings)),
  });
}

/** Groups cross-table mappings by the table their new columns live in. */
function groupSideTables(mappings: readonly BoundMapping[]): SideTableGroup[] {
  const tables = new Map<
    string,
    { table: QualifiedName; keyColumns: readonly BoundColumn[]; mappings: BoundMapping[] }
  >();
  for (const mapping of mappings) {
    const side = mapping.newTable;
    if (side === undefined) continue;
    const entry = tables.get(side.table.quoted);
    if (entry === undefined)
      tables.set(side.table.quoted, { table: side.table, keyColumns: side.keyColumns, mappings: [mapping] });
    else entry.mappings.push(mapping);
  }
  return [...tables.values()];
}

/** `split` and `merge` cut and join text: their fields and any column type they declare must be text. */
function textOnly(
  spec: MappingSpec,
  table: TableDefinition<EntitySchema, string>,
  fieldKinds: readonly LogicalKind[],
  path: string,
  fail: (path: string, message: string) => never,
): void {
  for (const [index, kind] of fieldKinds.entries()) {
    if (kind !== 'string') {
      fail(
        `${path}.fields.${index}`,
        `${spec.kind} joins and cuts text, but field "${spec.fields[index]}" of table ${table.table.display} is declared as ${kind}; declare it z.string()`,
      );
    }
  }
  for (const side of ['old', 'new'] as const) {
    for (const [index, ref] of spec[side].entries()) {
      if (ref.type !== undefined && !isTextType(ref.type)) {
        fail(
          `${path}.${side}.${index}.type`,
          `${spec.kind} joins and cuts text, but column "${ref.column}" is declared ${JSON.stringify(ref.type)}`,
        );
      }
    }
  }
}

function bindMapping(
  spec: MappingSpec,
  table: TableDefinition<EntitySchema, string>,
  path: string,
  fail: (path: string, message: string) => never,
): BoundMapping {
  if (spec.fields.length !== spec.new.length) {
    fail(`${path}.fields`, `has ${spec.fields.length} fields but ${spec.new.length} new columns; they pair one to one`);
  }
  const fieldKinds: LogicalKind[] = spec.fields.map((field, index) => {
    const kind = table.fieldKinds[field];
    if (kind === undefined) {
      fail(`${path}.fields.${index}`, `"${field}" is not a field of the entity of table ${table.table.display}`);
    }
    return kind!;
  });
  if (spec.kind === 'split' || spec.kind === 'merge') textOnly(spec, table, fieldKinds, path, fail);
  if (spec.oldKinds === 'field' && spec.old.length !== spec.fields.length) {
    fail(`${path}.old`, 'must have one column per field');
  }
  const bind = (ref: { column: string; type?: string | undefined }, kind: LogicalKind, at: string): BoundColumn => {
    const problem = identifierProblem(ref.column);
    if (problem !== undefined) fail(`${at}.column`, `${JSON.stringify(ref.column)} ${problem}`);
    if (ref.type !== undefined) {
      const typeProblem = sqlTypeProblem(ref.type);
      if (typeProblem !== undefined) fail(`${at}.type`, `${JSON.stringify(ref.type)} ${typeProblem}`);
    }
    return { name: ref.column, quoted: `"${ref.column}"`, type: ref.type, codec: columnCodec(ref.type, kind) };
  };
  const oldColumns = spec.old.map((ref, index) =>
    bind(
      ref,
      spec.oldKinds === 'field' ? fieldKinds[index]! : (spec.oldKinds[index] ?? 'json'),
      `${path}.old.${index}`,
    ),
  );
  const newColumns = spec.new.map((ref, index) => bind(ref, fieldKinds[index]!, `${path}.new.${index}`));
  let newTable: SideTable | undefined;
  if (spec.newTable !== undefined) {
    let name: QualifiedName;
    try {
      name = parseQualifiedName(spec.newTable.name, 'table name');
    } catch (error) {
      fail(`${path}.newTable.name`, (error as Error).message);
    }
    name = name!;
    const keyNames = spec.newTable.key ?? table.keyFields.map((field) => table.columns[field]!.name);
    if (keyNames.length !== table.keyFields.length) {
      fail(
        `${path}.newTable.key`,
        `has ${keyNames.length} columns but the key of ${table.table.display} has ${table.keyFields.length}`,
      );
    }
    newTable = {
      table: name,
      keyColumns: keyNames.map((column, index) => {
        const keyColumn = table.columns[table.keyFields[index]!]!;
        return bind(
          { column, type: keyColumn.type },
          table.fieldKinds[table.keyFields[index]!]!,
          `${path}.newTable.key.${index}`,
        );
      }),
    };
  } else {
    const names = new Set<string>();
    for (const column of [...oldColumns, ...newColumns]) {
      if (names.has(column.name)) fail(path, `column "${column.name}" appears twice; old and new columns must differ`);
      names.add(column.name);
    }
  }
  if (spec.sql !== undefined) {
    if (spec.sql.forward.length !== newColumns.length || spec.sql.backward.length !== oldColumns.length) {
      fail(`${path}.sql`, 'needs one forward expression per new column and one backward expression per old column');
    }
  }
  return Object.freeze({
    kind: spec.kind,
    fields: Object.freeze([...spec.fields]),
    oldColumns: Object.freeze(oldColumns),
    newColumns: Object.freeze(newColumns),
    newTable,
    forward: spec.forward,
    backward: spec.backward,
    sql: spec.sql,
    spec,
  });
}
