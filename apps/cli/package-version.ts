/**
 * The version `flagshift --version` prints: package.json's, found from the sources
 * (apps/cli/) and from the build (dist/apps/cli/) alike.
 */
import { readFileSync } from 'node:fs';

/** package.json's version, or `unknown` when no flagshift package.json is found. */
export function packageVersion(): string {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'flagshift' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this level: the build sits one directory deeper than the sources.
    }
  }
  return 'unknown';
}
