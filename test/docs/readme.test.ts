/**
 * Runs the README's guide in this clone, as a reader would: every block marked
 * `<!-- run: clone -->` (and the marked code of the guides in docs/guides). A `js`/`ts` block is written to a module in the clone and
 * imported (PGlite, in this process), and whatever it prints with `console.log` must be
 * what the comment on that line says. A shell block runs line by line against a database
 * of its own on the test server: the CLI (`npm run flagshift -- ...`) in this process
 * through its `main`, `psql -c` through a connection. A line the test doesn't know how to
 * run fails it, so the README can't grow a command nobody runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../apps/cli/support/run-cli.js';
import { testDatabaseUrl } from '../support/pg-connections.js';
import { type FencedBlock, markedBlocks } from './support/markdown.js';
import { shellWords } from './support/shell.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const cloneBlocks = markedBlocks(readme, 'run: clone');
const moduleBlocks = cloneBlocks.filter((block) => ['js', 'ts', 'mjs', 'mts'].includes(block.lang));
const shellBlocks = cloneBlocks.filter((block) => ['sh', 'bash', 'shell'].includes(block.lang));
const guides = readdirSync(join(root, 'docs/guides')).filter((name) => name.endsWith('.md'));
const guideBlocks = guides.flatMap((name) =>
  markedBlocks(readFileSync(join(root, 'docs/guides', name), 'utf8'), 'run: clone').map(
    (block) => [`docs/guides/${name}:${block.line}`, block] as const,
  ),
);

/** A PGlite start and a whole lifecycle: seconds, more on a loaded machine. */
const GUIDE_TIMEOUT_MS = 60_000;

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
    expect(shellWords(`echo '$DATABASE_URL' \${DATABASE_URL}x`, env)).toEqual([
      'echo',
      '$DATABASE_URL',
      'postgres://h/dbx',
    ]);
    expect(() => shellWords('echo "$UNSET"', env)).toThrow(/UNSET/);
  });

  /** Imports `block` as a module of the clone and returns what it printed. */
  async function runModule(name: string, block: FencedBlock): Promise<string[]> {
    const file = join(tmp, `${name.replace(/\W+/g, '-')}.mjs`);
    writeFileSync(file, block.code);
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      printed.push(
        args.map((arg) => (typeof arg === 'string' ? arg : inspect(arg, { breakLength: Infinity }))).join(' '),
      );
    });
    try {
      await import(pathToFileURL(file).href);
    } finally {
      log.mockRestore();
    }
    return printed;
  }

  it.each(moduleBlocks.map((block) => [label(block), block] as const))(
    '%s runs and prints what its comments say',
    async (name, block) => {
      const expected = expectedPrints(block.code);
      expect(expected.length).toBeGreaterThan(0);
      expect(await runModule(name, block)).toEqual(expected);
    },
    GUIDE_TIMEOUT_MS,
  );

  it('marks the migration of every guide in docs/guides to run', () => {
    expect(guideBlocks.map(([name]) => name.split(':')[0])).toEqual(guides.map((name) => `docs/guides/${name}`));
  });

  it.each(guideBlocks)('%s defines its migrations without an error', async (name, block) => {
    expect(await runModule(name, block)).toEqual(expectedPrints(block.code));
  });

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

    it("examples/demo.ts's closing CLI commands run against the guide's table", async () => {
      const demo = readFileSync(join(root, 'examples/demo.ts'), 'utf8');
      const commands = [...demo.matchAll(/note\('\s+(npm run flagshift -- [^']*)'\)/g)].map((match) => match[1] ?? '');
      expect(commands.some((command) => command.endsWith(' dashboard'))).toBe(true);
      const once = commands.filter((command) => !command.endsWith(' dashboard')); // a server: it never returns
      expect(once.length).toBeGreaterThan(0);
      for (const command of once) await runLine(command);
    });

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
