/**
 * The code in README.md and docs/**\/*.md imports only what flagshift exports: every name a
 * block imports from `flagshift` or one of its entry points is an export of that entry
 * point, so a renamed or removed function can't linger in the documentation.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { documentationPages, fencedBlocks } from './support/markdown.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The value names each `import { ... } from 'flagshift...'` of `code` takes, by entry point. */
function flagshiftImports(code: string): Array<{ entry: string; name: string }> {
  return [...code.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(flagshift(?:\/[\w-]+)?)'/g)].flatMap((match) =>
    (match[1] ?? '')
      .split(',')
      .map((specifier) => specifier.trim())
      .filter((specifier) => specifier !== '' && !specifier.startsWith('type '))
      .map((specifier) => ({ entry: match[2] ?? '', name: specifier.split(/\s+as\s+/)[0] ?? '' })),
  );
}

const pages = documentationPages(root);
const imports = pages.flatMap((page) =>
  fencedBlocks(readFileSync(page, 'utf8'))
    .filter((block) => ['ts', 'js', 'typescript', 'javascript'].includes(block.lang))
    .flatMap((block) =>
      flagshiftImports(block.code).map((item) => ({ ...item, where: `${relative(root, page)}:${block.line}` })),
    ),
);

describe('imports in the documentation', () => {
  it('reads the names a block imports, without its types', () => {
    expect(flagshiftImports("import { a, type B, c as d } from 'flagshift/pg';\nimport x from 'zod';")).toEqual([
      { entry: 'flagshift/pg', name: 'a' },
      { entry: 'flagshift/pg', name: 'c' },
    ]);
  });

  it('imports only names the entry points export', async () => {
    expect(imports.length).toBeGreaterThan(20);
    const entries = new Map<string, Record<string, unknown>>();
    const missing: string[] = [];
    for (const { entry, name, where } of imports) {
      let module = entries.get(entry);
      if (module === undefined) {
        module = (await import(entry)) as Record<string, unknown>;
        entries.set(entry, module);
      }
      if (!(name in module)) missing.push(`${where}: ${name} from ${entry}`);
    }
    expect(missing).toEqual([]);
  }, 60_000);
});
