/**
 * Runs every example to completion, in this process: each example is a script that runs
 * when imported, prints with console.log and exits 1 (process.exit) on an unexpected
 * result. One process for all of them starts the TypeScript loader once and lets every
 * PGlite after the first reuse the compiled WebAssembly, where a process per example paid
 * both each time. `npm run examples` and `npm run demo` still run them standalone.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

/** An example starts PGlite and walks a migration through its stages: seconds, many more on a loaded machine. */
const EXAMPLE_TIMEOUT_MS = 120_000;

/** Imports `examples/<name>.ts`, which runs it, and returns what it printed. */
async function runExample(name: string): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
  await import(`../../examples/${name}.ts`);
  return lines.join('\n');
}

// One after another: the examples print through the one console, and each needs the cores.
describe('examples', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each([
    'rename',
    'split',
    'cross-table',
    'change-type',
    'orm-sql',
    'orm-kysely',
    'orm-drizzle',
    'orm-typeorm',
    'orm-knex',
  ])(
    'examples/%s.ts runs to completion on the embedded database',
    async (name) => {
      const stdout = await runExample(name);
      expect(stdout.length).toBeGreaterThan(0);
    },
    EXAMPLE_TIMEOUT_MS,
  );

  it(
    'examples/lifecycle.ts runs to completion, every step as expected',
    async () => {
      const stdout = await runExample('lifecycle');
      expect(stdout).toMatch(/\nall steps as expected$/);
    },
    EXAMPLE_TIMEOUT_MS,
  );

  it(
    'examples/demo.ts runs to completion and points at the CLI and lifecycle API for the steps it does in plain SQL',
    async () => {
      const stdout = await runExample('demo');
      expect(stdout).toMatch(/every check passed\n/);
      expect(stdout).toContain('npm run flagshift -- -m examples/flagshift.config.ts plan users-username');
      expect(stdout).toContain('npm run flagshift -- -m examples/flagshift.config.ts dashboard');
      expect(stdout).not.toMatch(/comes later|by hand/);
      expect(stdout).toContain('flagshift expand users-username, or expand() from flagshift/lifecycle');
      expect(stdout).toContain('flagshift backfill users-username');
      expect(stdout).toContain('flagshift contract users-username');
    },
    EXAMPLE_TIMEOUT_MS,
  );
});
