import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { root } from './support/run-cli.js';

const run = promisify(execFile);

/** Runs `node bin/flagshift.js <args>` in `dir`; resolves with the exit code whatever it is. */
async function runBin(dir: string, args: readonly string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(dir, 'bin/flagshift.js'), ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('bin/flagshift.js: the published binary', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flagshift-bin-'));
    await mkdir(join(dir, 'bin'));
    await copyFile(join(root, 'bin/flagshift.js'), join(dir, 'bin/flagshift.js'));
    await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('without a build: one line saying to build or to run from the sources, exit 1', async () => {
    const { code, stdout, stderr } = await runBin(dir, ['--help']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^flagshift: error: .*npm run build.*npm run flagshift -- <args>/),
    ]);
  });

  it('with a build: runs dist/apps/cli/cli.js', async () => {
    await mkdir(join(dir, 'dist/apps/cli'), { recursive: true });
    await writeFile(
      join(dir, 'dist/apps/cli/cli.js'),
      "process.stdout.write('built cli ' + process.argv.slice(2).join(' ') + '\\n');\n",
    );
    const { code, stdout } = await runBin(dir, ['status', '--json']);
    expect(code).toBe(0);
    expect(stdout).toBe('built cli status --json\n');
  });
});
