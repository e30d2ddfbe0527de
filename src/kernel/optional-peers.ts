import { ConfigurationError } from './errors.js';

/**
 * Loads the optional peer dependencies an entry point needs, so that a missing one fails
 * when the entry is imported, with the command that fixes it, instead of a bare
 * `ERR_MODULE_NOT_FOUND` from a file the user never wrote. Entry points call it with a
 * top-level `await`: a static `import` of a missing package fails while the module graph
 * links, before any flagshift code could explain it.
 *
 * @param entry - the subpath the user imported, e.g. `flagshift/prometheus`
 * @param packages - the peer packages, in the order their modules are returned
 * @returns the packages' module namespaces, in the order of `packages`
 * @throws ConfigurationError naming every missing package and `npm install` with all of
 *   them; or, when a package is installed but fails to load, naming it with the cause
 */
export async function importOptionalPeers<Modules extends readonly unknown[]>(
  entry: string,
  packages: { readonly [K in keyof Modules]: string },
): Promise<Modules> {
  const names = packages as readonly string[];
  const settled = await Promise.allSettled(names.map((name) => import(name)));
  const missing: string[] = [];
  for (const [index, outcome] of settled.entries()) {
    if (outcome.status === 'fulfilled') continue;
    const name = names[index] as string;
    if (!isNotFound(outcome.reason, name)) {
      throw new ConfigurationError(
        `${entry} could not load its peer dependency ${name}: ${(outcome.reason as Error)?.message ?? String(outcome.reason)}`,
        { cause: outcome.reason },
      );
    }
    missing.push(name);
  }
  if (missing.length > 0) {
    throw new ConfigurationError(`${entry} needs ${missing.join(' and ')}: npm install ${missing.join(' ')}`, {
      cause: (settled.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult).reason,
    });
  }
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as Modules;
}

/**
 * Whether `error` says `name` itself is not installed, not that something it imports is
 * missing (that is a broken install, reported with its own message).
 */
function isNotFound(error: unknown, name: string): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  const message = (error as Error).message;
  return message.includes(`'${name}'`) || message.includes(`"${name}"`);
}
