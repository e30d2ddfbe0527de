/**
 * Loads the migrations module the CLI works from: a `.ts`, `.mts`, `.js` or `.mjs` file
 * whose default export is a migration or a list of them, or whose named exports are.
 */
import { access } from 'node:fs/promises';
import { extname, isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Migration } from '../../src/index.js';
import { CliError } from './cli-error.js';

/** Files looked for in the working directory when `--migrations` is not given, in order. */
export const DEFAULT_MIGRATION_FILES = [
  'flagshift.config.ts',
  'flagshift.config.mts',
  'flagshift.config.js',
  'flagshift.config.mjs',
];

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);

function isMigration(value: unknown): value is Migration {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'migration' &&
    typeof (value as { name?: unknown }).name === 'string'
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The module to load: `--migrations`, else the first default file present in `cwd`. */
export async function findMigrationsModule(given: string | undefined, cwd: string): Promise<string> {
  if (given !== undefined) {
    const path = isAbsolute(given) ? given : resolve(cwd, given);
    if (!(await exists(path))) throw new CliError(`migrations module ${given} does not exist`);
    return path;
  }
  for (const name of DEFAULT_MIGRATION_FILES) {
    const path = resolve(cwd, name);
    if (await exists(path)) return path;
  }
  throw new CliError(
    `no migrations module: create ./flagshift.config.ts (or .js, .mjs) exporting your migrations, or pass --migrations <file>`,
  );
}

function isUnknownExtension(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_UNKNOWN_FILE_EXTENSION' || code === 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING';
}

/**
 * Imports `path`. A TypeScript file is imported as is when the process already handles
 * TypeScript (run through tsx, or a Node that strips types), else through tsx's ESM API
 * (`tsImport` from `tsx/esm/api`), so the published CLI reads `flagshift.config.ts`
 * whenever tsx is installed.
 */
async function importModule(path: string, shown: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if (!TYPESCRIPT.has(extname(path)) || !isUnknownExtension(error)) throw error;
  }
  let tsx: { tsImport(specifier: string, parentURL: string): Promise<unknown> };
  try {
    tsx = (await import('tsx/esm/api')) as typeof tsx;
  } catch (cause) {
    throw new CliError(
      `migrations module ${shown} is TypeScript, which needs tsx to load: npm install --save-dev tsx (or compile it to .js)`,
      { cause },
    );
  }
  return (await tsx.tsImport(url, import.meta.url)) as Record<string, unknown>;
}

/** The migrations a module exports, by name. */
export async function loadMigrations(path: string, cwd: string): Promise<Map<string, Migration>> {
  const shown = relative(cwd, path).startsWith('..') ? path : `./${relative(cwd, path)}`;
  let module: Record<string, unknown>;
  try {
    module = await importModule(path, shown);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = (error as { message?: unknown } | null)?.message;
    // A compile error (tsx's esbuild) puts its file:line:col and cause on the lines after the first.
    const [first, ...rest] = String(message ?? error).split('\n');
    throw new CliError(`migrations module ${shown} failed to load: ${first}`, {
      cause: error,
      details: rest.map((line) => line.trimEnd()).filter((line) => line.trim() !== ''),
    });
  }
  const found = new Map<string, Migration>();
  const add = (value: unknown, where: string) => {
    const candidates = Array.isArray(value) ? value : [value];
    for (const candidate of candidates) {
      if (!isMigration(candidate)) continue;
      const earlier = found.get(candidate.name);
      if (earlier !== undefined && earlier !== candidate) {
        throw new CliError(
          `migrations module ${shown} exports two different migrations named "${candidate.name}" (${where})`,
        );
      }
      found.set(candidate.name, candidate);
    }
  };
  const defaultExport = module['default'];
  const fromDefault =
    typeof defaultExport === 'object' &&
    defaultExport !== null &&
    !Array.isArray(defaultExport) &&
    !isMigration(defaultExport)
      ? (defaultExport as { migrations?: unknown }).migrations
      : defaultExport;
  add(fromDefault, 'default export');
  for (const [name, value] of Object.entries(module)) if (name !== 'default') add(value, `export "${name}"`);
  if (found.size === 0) {
    throw new CliError(
      `migrations module ${shown} exports no migrations: export them (from defineMigration) as the default export (a list) or as named exports`,
    );
  }
  return found;
}
