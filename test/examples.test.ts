import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe('examples', () => {
  it.each(['demo', 'rename', 'split', 'cross-table', 'change-type', 'lifecycle'])(
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
});
