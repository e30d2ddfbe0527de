/**
 * The package as a user gets it: built once from the working tree into a tarball, installed
 * with `npm` into fresh projects outside the repository (inside it, Node and tsc would find
 * the repository's own node_modules, peers included, and prove nothing).
 *
 * @example
 * ```ts
 * const tarball = await buildPackage();
 * const project = await freshProject('peers', tarball);
 * const { stderr } = await project.run('node', ['-e', "import('flagshift/prometheus')"]);
 * ```
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { bundleDashboardScript, DASHBOARD_BUNDLE_PATH } from '../../apps/dashboard/dashboard-script.js';

const run = promisify(execFile);

/** The repository's root. */
export const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

/** What goes into the build: the package's sources and the files that shape the tarball. */
const inputs = ['src', 'adapters', 'apps', 'bin', 'package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md'];

async function filesUnder(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  const entries = await readdir(path, { withFileTypes: true, recursive: true }).catch(() => undefined);
  if (entries === undefined) return [path];
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** A digest of every input file's path and content: the build's cache key. */
async function inputDigest(): Promise<string> {
  const hash = createHash('sha256');
  for (const input of inputs) {
    for (const file of await filesUnder(join(repositoryRoot, input))) {
      hash
        .update(relative(repositoryRoot, file))
        .update('\0')
        .update(await readFile(file))
        .update('\0');
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** Waits for `lock` (a directory: `mkdir` is atomic) so parallel test files build once. */
async function withLock<T>(lock: string, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) throw error;
      // A lock older than any build was left by a run that was killed mid-build.
      const held = await stat(lock).catch(() => undefined);
      if (held !== undefined && Date.now() - held.mtimeMs > 600_000) await rm(lock, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    return await body();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

let building: Promise<string> | undefined;

/**
 * Builds the package as `npm run build` does (tsc with tsconfig.build.json, then the
 * dashboard's page script) into `.flagshift-tmp/package/<digest>/`, packs it with
 * `npm pack`, and returns the tarball's path. Built once for a given working tree: test
 * files of one run, and later runs with no source changed, reuse the tarball.
 */
export function buildPackage(): Promise<string> {
  building ??= (async () => {
    const base = join(repositoryRoot, '.flagshift-tmp', 'package');
    const stage = join(base, await inputDigest());
    const tarballPath = join(stage, 'flagshift.tgz');
    await mkdir(base, { recursive: true });
    return withLock(join(base, 'lock'), async () => {
      if (existsSync(tarballPath)) return tarballPath;
      // Builds of older trees are never read again.
      for (const old of await readdir(base)) {
        if (old !== 'lock') await rm(join(base, old), { recursive: true, force: true });
      }
      const root = join(stage, 'package');
      await mkdir(join(root, 'bin'), { recursive: true });
      const tsc = join(repositoryRoot, 'node_modules', 'typescript', 'bin', 'tsc');
      await run(
        process.execPath,
        [tsc, '-p', join(repositoryRoot, 'tsconfig.build.json'), '--outDir', join(root, 'dist')],
        {
          cwd: repositoryRoot,
        },
      );
      const script = join(root, 'dist', 'apps', 'dashboard', DASHBOARD_BUNDLE_PATH);
      await mkdir(dirname(script), { recursive: true });
      await writeFile(script, await bundleDashboardScript());
      for (const file of ['package.json', 'README.md', 'bin/flagshift.js']) {
        await writeFile(join(root, file), await readFile(join(repositoryRoot, file)));
      }
      const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', stage], {
        cwd: root,
      });
      const [packed] = JSON.parse(stdout) as { filename: string }[];
      if (packed === undefined) throw new Error(`npm pack wrote no tarball: ${stdout}`);
      await writeFile(tarballPath, await readFile(join(stage, packed.filename)));
      return tarballPath;
    });
  })();
  return building;
}

/** What a command run in a fresh project printed, and how it ended. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A project directory outside the repository, with the built package installed. */
export interface FreshProject {
  /** The project's directory. */
  readonly dir: string;
  /** Runs `command` in the project; never rejects on a non-zero exit. */
  run(command: string, args: readonly string[], options?: { readonly shell?: boolean }): Promise<CommandResult>;
  /** Writes `content` to `path` (relative to the project). */
  write(path: string, content: string): Promise<void>;
  /** Removes the project. */
  remove(): Promise<void>;
}

/** Keeps npm quiet and off the network when its cache already has what is asked. */
const npmFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

/**
 * Makes a project `flagshift-NAME-*` in the system's temp directory: an ESM `package.json`,
 * and, when `tarball` is given, `npm install` of it, which brings the package's real
 * dependencies and none of its optional peers.
 */
export async function freshProject(name: string, tarball?: string): Promise<FreshProject> {
  const dir = await mkdtemp(join(tmpdir(), `flagshift-${name}-`));
  const project: FreshProject = {
    dir,
    async run(command, args, options = {}) {
      try {
        const { stdout, stderr } = await run(command, [...args], {
          cwd: dir,
          shell: options.shell ?? false,
          env: {
            ...process.env,
            npm_config_audit: 'false',
            npm_config_fund: 'false',
            npm_config_prefer_offline: 'true',
          },
          maxBuffer: 16 * 1024 * 1024,
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failure = error as { code?: unknown; stdout?: string; stderr?: string };
        return {
          code: typeof failure.code === 'number' ? failure.code : 1,
          stdout: failure.stdout ?? '',
          stderr: failure.stderr ?? String(error),
        };
      }
    },
    async write(path, content) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  await project.write('package.json', `${JSON.stringify({ name: `fresh-${name}`, private: true, type: 'module' })}\n`);
  if (tarball !== undefined) {
    const installed = await project.run('npm', ['install', ...npmFlags, tarball]);
    if (installed.code !== 0) throw new Error(`npm install of the package failed: ${installed.stderr}`);
  }
  return project;
}

/** One step of a README guide: a file to write, or a shell script to run. */
export type GuideStep =
  | { readonly kind: 'file'; readonly path: string; readonly content: string }
  | { readonly kind: 'run'; readonly script: string };

/**
 * The steps of the guide named `guide` in a README: each fenced block preceded by
 * `<!-- file: GUIDE PATH -->` is a file to write at PATH, each preceded by
 * `<!-- run: GUIDE -->` a script to run, in the order they appear.
 */
export function guideSteps(markdown: string, guide: string): GuideStep[] {
  const steps: GuideStep[] = [];
  const marker = /<!--\s*(file|run):\s*(\S+)(?:\s+(\S+))?\s*-->\s*\n(`{3,})[^\n]*\n([\s\S]*?)\n\4[ \t]*(?:\n|$)/g;
  for (const match of markdown.matchAll(marker)) {
    const [, kind, name, path, , body = ''] = match;
    if (name !== guide) continue;
    if (kind === 'file') {
      if (path === undefined) throw new Error(`a "file: ${guide}" marker names no file: ${match[0].split('\n')[0]}`);
      steps.push({ kind: 'file', path, content: `${body}\n` });
    } else {
      steps.push({ kind: 'run', script: body });
    }
  }
  return steps;
}

/**
 * A guide's script as it runs against the built package: `npm install flagshift ...`
 * installs the tarball instead of the registry's flagshift; a leading `$ ` prompt is dropped.
 */
export function localScript(script: string, tarball: string): string {
  return script
    .split('\n')
    .map((line) => line.replace(/^\$\s+/, ''))
    .map((line) =>
      /^\s*npm\s+(install|i|add)\b/.test(line)
        ? line.replace(/(?<=\s)flagshift(?=\s|$)/g, JSON.stringify(tarball))
        : line,
    )
    .join('\n');
}
