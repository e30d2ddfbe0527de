/**
 * Runs the README's guide in this clone, as a reader would: every block marked
 * `<!-- run: clone -->`. A `js`/`ts` block is written to a module in the clone and
 * imported (PGlite, in this process), and whatever it prints with `console.log` must be
 * what the comment on that line says. A shell block runs line by line against a database
 * of its own on the test server: the CLI (`npm run flagshift -- ...`) in this process
 * through its `main`, `psql -c` through a connection. A line the test doesn't know how to
 * run fails it, so the README can't grow a command nobody runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testDatabaseUrl } from '../support/pg-connections.js';
import { runCli } from '../apps/cli/support/run-cli.js';
import { type FencedBlock, markedBlocks } from './support/markdown.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const cloneBlocks = markedBlocks(readme, 'run: clone');
const moduleBlocks = cloneBlocks.filter((block) => ['js', 'ts', 'mjs', 'mts'].includes(block.lang));
const shellBlocks = cloneBlocks.filter((block) => ['sh', 'bash', 'shell'].includes(block.lang));

/** A PGlite start and a whole lifecycle: seconds, more on a loaded machine. */
const GUIDE_TIMEOUT_MS = 60_000;

/**
 * Splits a shell command line into words as sh does for the forms the README uses:
 * blanks separate words, '...' is literal, "..." expands `$NAME` and `${NAME}` from `env`.
 */
export function shellWords(line: string, env: Readonly<Record<string, string>>): string[] {
  const words: string[] = [];
  let word: string | undefined;
  const expand = (text: string) =>
    text.replace(/\$(?:\{(\w+)\}|(\w+))/g, (_all, braced: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      const value = env[name];
      if (value === undefined) throw new Error(`the README uses $${name}, which the test doesn't set`);
      return value;
    });
  for (let i = 0; i < line.length; i++) {
    const char = line[i] ?? '';
    if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "'" || char === '"') {
      const end = line.indexOf(char, i + 1);
      if (end < 0) throw new Error(`unterminated ${char} in: ${line}`);
      const quoted = line.slice(i + 1, end);
      word = (word ?? '') + (char === '"' ? expand(quoted) : quoted);
      i = end;
    } else if (char === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + (char === '$' ? expand(line.slice(i).match(/^\$(\{\w+\}|\w+)/)?.[0] ?? '$') : char);
      if (char === '$') i += (line.slice(i).match(/^\$(\{\w+\}|\w+)/)?.[0].length ?? 1) - 1;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The comments of `console.log(...); // comment` lines: what each one must print. */
function expectedPrints(code: string): string[] {
  return code.split('\n').flatMap((line) => {
    const match = /^\s*console\.log\(.*\);\s*\/\/\s*(.+)$/.exec(line);
    return match === null ? [] : [(match[1] ?? '').trim()];
  });
}

function label(block: FencedBlock): string {
  return `README.md:${block.line}`;
}

describe('README guide, in a clone', () => {
  const tmp = join(root, '.flagshift-tmp', `readme-${randomBytes(4).toString('hex')}`);
  beforeAll(() => {
    mkdirSync(tmp, { recursive: true });
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('has blocks to run, of both kinds', () => {
    expect(moduleBlocks.length).toBeGreaterThan(0);
    expect(shellBlocks.length).toBeGreaterThan(0);
    expect(cloneBlocks.length).toBe(moduleBlocks.length + shellBlocks.length);
  });

  it('splits shell lines as sh does', () => {
    const env = { DATABASE_URL: 'postgres://h/db' };
    expect(shellWords(`psql "$DATABASE_URL" -c "SELECT 'a b'"  # note`, env)).toEqual([
      'psql',
      'postgres://h/db',
      '-c',
      "SELECT 'a b'",
    ]);
    expect(shellWords("echo '$DATABASE_URL' ${DATABASE_URL}x", env)).toEqual(['echo', '$DATABASE_URL', 'postgres://h/dbx']);
    expect(() => shellWords('echo "$UNSET"', env)).toThrow(/UNSET/);
  });

  it.each(moduleBlocks.map((block) => [label(block), block] as const))(
    '%s runs and prints what its comments say',
    async (_label, block) => {
      const file = join(tmp, `line-${block.line}.mjs`);
      writeFileSync(file, block.code);
      const printed: string[] = [];
      const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
        printed.push(args.map((arg) => (typeof arg === 'string' ? arg : inspect(arg, { breakLength: Infinity }))).join(' '));
      });
      try {
        await import(pathToFileURL(file).href);
      } finally {
        log.mockRestore();
      }
      const expected = expectedPrints(block.code);
      expect(expected.length).toBeGreaterThan(0);
      expect(printed).toEqual(expected);
    },
    GUIDE_TIMEOUT_MS,
  );

  describe('shell blocks, against a database of their own', () => {
    const database = `readme_${randomBytes(6).toString('hex')}`;
    let admin: pg.Client;
    let env: Record<string, string>;

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: testDatabaseUrl() });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${database}`);
      const url = new URL(testDatabaseUrl());
      url.pathname = `/${database}`;
      env = { DATABASE_URL: url.href };
    });
    afterAll(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    });

    /** Runs one line of a shell block; throws with the line and its output when it fails. */
    async function runLine(line: string): Promise<void> {
      const words = shellWords(line, env);
      if (words.length === 0) return;
      const [command, ...args] = words;
      if (command === 'psql' && args.length === 3 && args[1] === '-c') {
        const client = new pg.Client({ connectionString: args[0] });
        await client.connect();
        try {
          await client.query(args[2] ?? '');
        } finally {
          await client.end();
        }
        return;
      }
      if (command === 'npm' && args[0] === 'run' && args[1] === 'flagshift' && args[2] === '--') {
        const result = await runCli(args.slice(3), { env, cwd: root });
        if (result.code !== 0) {
          throw new Error(`${line}\nexited ${result.code}\n${result.stdout}\n${result.stderr}`);
        }
        return;
      }
      throw new Error(`the README test doesn't know how to run: ${line}`);
    }

    it.each(shellBlocks.map((block) => [label(block), block] as const))(
      '%s: every command succeeds',
      async (_label, block) => {
        for (const line of block.code.split('\n')) await runLine(line);
      },
      GUIDE_TIMEOUT_MS,
    );

    it('left the database as the guide says: username filled, the stage at dualwrite', async () => {
      const client = new pg.Client({ connectionString: env['DATABASE_URL'] });
      await client.connect();
      try {
        const { rows } = await client.query<{ username: string | null }>('SELECT username FROM users WHERE id = 1');
        expect(rows).toEqual([{ username: 'ada' }]);
      } finally {
        await client.end();
      }
      const status = await runCli(['-m', 'examples/flagshift.config.ts', '--json', 'status'], { env, cwd: root });
      expect(status.code).toBe(0);
      expect(status.stdout).toContain('dualwrite');
    });
  });
});
