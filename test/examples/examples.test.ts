import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

describe('examples', () => {
  it.each(['rename', 'split', 'cross-table', 'change-type', 'lifecycle', 'orm-sql', 'orm-kysely', 'orm-drizzle'])(
    'examples/%s.ts runs to completion on the embedded database',
    async (name) => {
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', '--conditions=flagshift-source', `examples/${name}.ts`],
        { cwd: root, timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } },
      );
      expect(stdout.length).toBeGreaterThan(0);
    },
    120_000,
  );

  it('examples/demo.ts runs to completion and points at the CLI and lifecycle API for the steps it does in plain SQL', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--conditions=flagshift-source', 'examples/demo.ts'],
      { cwd: root, timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(stdout).not.toMatch(/comes later|by hand/);
    expect(stdout).toContain('flagshift expand users-username, or expand() from flagshift/lifecycle');
    expect(stdout).toContain('flagshift backfill users-username');
    expect(stdout).toContain('flagshift contract users-username');
  }, 120_000);
});
