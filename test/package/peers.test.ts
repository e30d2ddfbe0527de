/**
 * The built package in a fresh project that installed flagshift and none of its optional
 * peers: every entry with a peer fails at import naming the package and the install
 * command, the others import, and the published types pass a strict type-check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, type FreshProject, freshProject, repositoryRoot } from '../support/package.js';

/** Each entry point with optional peers, and the peers it names. */
const peersOf: Readonly<Record<string, readonly string[]>> = {
  'flagshift/pglite': ['@electric-sql/pglite'],
  'flagshift/sql': ['libpg-query', 'pgsql-deparser'],
  'flagshift/openfeature': ['@openfeature/server-sdk'],
  'flagshift/postgres-flags': ['@openfeature/server-sdk'],
  'flagshift/prometheus': ['prom-client'],
  'flagshift/opentelemetry': ['@opentelemetry/api'],
};

/** Entry points that need nothing beyond the package's dependencies. */
const withoutPeers = ['flagshift', 'flagshift/pg', 'flagshift/lifecycle', 'flagshift/dashboard'];

const entries = [...withoutPeers, ...Object.keys(peersOf)];

let project: FreshProject;

beforeAll(async () => {
  project = await freshProject('peers', await buildPackage());
}, 300_000);

afterAll(async () => {
  await project?.remove();
});

describe('the package without its optional peers', () => {
  it('import: an entry with a missing peer fails with the package and the install command; the rest import', async () => {
    // One process imports every entry; each failure is caught and reported.
    const script = `
      const outcome = {};
      for (const entry of ${JSON.stringify(entries)}) {
        try {
          const module = await import(entry);
          outcome[entry] = { exports: Object.keys(module).length };
        } catch (error) {
          outcome[entry] = { name: error.name, code: error.code, message: error.message };
        }
      }
      console.log(JSON.stringify(outcome));`;
    const result = await project.run(process.execPath, ['--input-type=module', '-e', script]);
    expect(result.stderr).toBe('');
    const outcome = JSON.parse(result.stdout) as Record<string, { exports?: number; message?: string }>;
    for (const entry of withoutPeers) expect(outcome[entry]?.exports, entry).toBeGreaterThan(0);
    for (const [entry, peers] of Object.entries(peersOf)) {
      expect(outcome[entry], entry).toEqual({
        name: 'ConfigurationError',
        code: 'configuration',
        message: `${entry} needs ${peers.join(' and ')}: npm install ${peers.join(' ')}`,
      });
    }
  });

  it('cli: the flagshift binary runs', async () => {
    const result = await project.run(process.execPath, ['node_modules/flagshift/bin/flagshift.js', '--help']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage: flagshift/);
  });

  it('types: a consumer importing every entry type-checks with skipLibCheck off', async () => {
    await project.write(
      'tsconfig.json',
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
          // The consumer's own @types/node; borrowed from the repository to spare an install.
          typeRoots: [`${repositoryRoot}node_modules/@types`],
        },
        files: ['consumer.ts'],
      }),
    );
    await project.write(
      'consumer.ts',
      [
        ...entries.map((entry, index) => `import * as entry${index} from '${entry}';`),
        `export const entries = [${entries.map((_, index) => `entry${index}`).join(', ')}];`,
        '',
      ].join('\n'),
    );
    const tsc = `${repositoryRoot}node_modules/typescript/bin/tsc`;
    const result = await project.run(process.execPath, [tsc, '-p', 'tsconfig.json']);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
    // A strict check of every declaration the entries reach, zod's and node's included.
  }, 180_000);
});
