/**
 * The page's script: the TypeScript modules under `browser/`, bundled by esbuild into one
 * classic script that the page carries inline (under its CSP nonce). `npm run build` writes
 * the bundle next to the compiled dashboard (`dist/apps/dashboard/browser/dashboard.js`),
 * so the published package serves it without esbuild. Run from the TypeScript sources (the
 * tests, `npm run flagshift`, the examples under tsx), the dashboard bundles the sources
 * on first use instead, so the page always matches them: a bundle left in `dist/` by an
 * earlier build may be older than the sources.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ConfigurationError } from '../../src/index.js';

/** Where the built bundle is, relative to the dashboard's compiled modules. */
export const DASHBOARD_BUNDLE_PATH = 'browser/dashboard.js';

/** The bundle's entry, relative to the dashboard's TypeScript sources. */
const ENTRY = new URL('./browser/main.ts', import.meta.url);

/** Sequences that would end or derail an inline `<script>` element early. */
const NOT_INLINE_SAFE = /<\/script|<!--/i;

let loaded: Promise<string> | undefined;

/**
 * The page's script, read once per process (see {@link readDashboardScript}).
 *
 * @throws {ConfigurationError} as {@link readDashboardScript} does.
 */
export function loadDashboardScript(): Promise<string> {
  // A failure is not kept: the next dashboard started tries again.
  loaded ??= readDashboardScript().catch((error: unknown) => {
    loaded = undefined;
    throw error;
  });
  return loaded;
}

/**
 * The page's script for the dashboard module at `moduleUrl`: when that is a TypeScript
 * source, the sources bundled now; else the bundle built next to it.
 *
 * @throws {ConfigurationError} naming the file when the built bundle is missing (a package
 *   built without it) or can't be inlined, or, from the sources, when esbuild is not
 *   installed or the sources don't bundle.
 */
export async function readDashboardScript(moduleUrl: string = import.meta.url): Promise<string> {
  if (moduleUrl.endsWith('.ts')) return bundleDashboardScript();
  const url = new URL(DASHBOARD_BUNDLE_PATH, moduleUrl);
  const path = fileURLToPath(url);
  let script: string;
  try {
    script = await readFile(url, 'utf8');
  } catch (error) {
    throw new ConfigurationError(
      `dashboard page script ${path} can't be read (${(error as { code?: string }).code ?? 'error'}): this ` +
        'flagshift was built without it; `npm run build` writes it, reinstalling the package restores it',
      { cause: error },
    );
  }
  return inlineSafe(script, path);
}

/**
 * Bundles the page's script from the TypeScript sources with esbuild, a development
 * dependency: for the build, and for running from the sources.
 *
 * @throws {ConfigurationError} when esbuild is not installed or the sources don't bundle.
 */
export async function bundleDashboardScript(): Promise<string> {
  const entry = fileURLToPath(ENTRY);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw new ConfigurationError(
      `dashboard page script ${entry} can't be bundled: esbuild is not installed (a development dependency: ` +
        'run `npm install`, or `npm run build` and use the built package)',
      { cause: error },
    );
  }
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      tsconfig: fileURLToPath(new URL('./browser/tsconfig.json', import.meta.url)),
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      target: 'es2020',
      legalComments: 'none',
      // uPlot's stylesheet, imported as text: the page adds it under its CSP nonce.
      loader: { '.css': 'text' },
      logLevel: 'silent',
    });
  } catch (error) {
    throw new ConfigurationError(
      `dashboard page script ${entry} can't be bundled: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const [output] = result.outputFiles ?? [];
  if (output === undefined) throw new ConfigurationError(`dashboard page script ${entry} bundled to nothing`);
  return inlineSafe(output.text, entry);
}

function inlineSafe(script: string, path: string): string {
  const found = NOT_INLINE_SAFE.exec(script);
  if (found !== null) {
    throw new ConfigurationError(
      `dashboard page script ${path} contains ${JSON.stringify(found[0])}, which would end the page's inline script`,
    );
  }
  return script;
}
