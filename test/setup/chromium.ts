/**
 * Makes Debian's Chromium available to browser tests. `npx playwright install` can't
 * download a browser on this kind of machine, so playwright-core drives the distribution's
 * `chromium` package, installed here with apt when it is missing and the run is root.
 *
 * In CI (`CI=true`) a browser that can't be had is a failure, never a silent skip: the
 * dashboard's browser test is the only proof that the page works. Locally the test may
 * skip, with the reason in the report.
 *
 * @example
 * ```ts
 * let browser: ChromiumAvailability;
 * beforeAll(async () => {
 *   browser = await requireChromium();
 * }, CHROMIUM_INSTALL_TIMEOUT_MS);
 * it('page: loads', async (ctx) => {
 *   if (!browser.available) return ctx.skip(browser.reason);
 *   // chromium.launch({ executablePath: browser.executablePath, args: CHROMIUM_ARGS })
 * });
 * ```
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Launch arguments for headless Chromium here. As root it needs `--no-sandbox`; without the
 * background-networking flags it tries, and fails, to reach Google's hosts at every start.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Longest the whole install may take (apt-get update + install); give it to `beforeAll`. */
export const CHROMIUM_INSTALL_TIMEOUT_MS = 330_000;

const APT_UPDATE_TIMEOUT_MS = 120_000;
const APT_INSTALL_TIMEOUT_MS = 200_000;

/** Whether a browser is there, and if not, why. */
export type ChromiumAvailability =
  | { readonly available: true; readonly executablePath: string; readonly installed: boolean }
  | { readonly available: false; readonly reason: string };

let pending: Promise<ChromiumAvailability> | undefined;

/**
 * Finds `/usr/bin/chromium`, installing Debian's package when it is missing and the process
 * runs as root. Never throws; concurrent callers in one process share one attempt, and apt
 * itself waits for the dpkg lock when another process installs at the same time.
 */
export function ensureChromium(): Promise<ChromiumAvailability> {
  pending ??= locateOrInstall();
  return pending;
}

/**
 * {@link ensureChromium} for a test's `beforeAll`: resolves with the availability, but
 * throws when the browser can't be had and `CI` is `true`, so CI fails with the reason
 * instead of skipping the browser test.
 */
export async function requireChromium(): Promise<ChromiumAvailability> {
  const result = await ensureChromium();
  if (!result.available && process.env['CI'] === 'true') {
    throw new Error(`browser tests need Chromium at ${CHROMIUM_PATH} and CI=true: ${result.reason}`);
  }
  return result;
}

async function locateOrInstall(): Promise<ChromiumAvailability> {
  if (await isExecutable(CHROMIUM_PATH)) return { available: true, executablePath: CHROMIUM_PATH, installed: false };
  if (process.platform !== 'linux') {
    return { available: false, reason: `${CHROMIUM_PATH} is missing and apt is only tried on Linux` };
  }
  if (process.getuid?.() !== 0) {
    return {
      available: false,
      reason: `${CHROMIUM_PATH} is missing and this process is not root, so it can't apt-get install chromium; install it (apt-get install chromium) and rerun`,
    };
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for the dpkg/apt locks rather than failing when another install holds them.
  const lockWait = ['-o', 'DPkg::Lock::Timeout=120'];
  const update = await run('apt-get', ['update', ...lockWait], env, APT_UPDATE_TIMEOUT_MS);
  if (!update.ok) return { available: false, reason: `apt-get update failed: ${update.detail}` };
  const install = await run(
    'apt-get',
    ['install', '-y', '--no-install-recommends', ...lockWait, 'chromium'],
    env,
    APT_INSTALL_TIMEOUT_MS,
  );
  if (!install.ok) return { available: false, reason: `apt-get install chromium failed: ${install.detail}` };
  if (!(await isExecutable(CHROMIUM_PATH))) {
    return { available: false, reason: `apt-get installed chromium but ${CHROMIUM_PATH} is still missing` };
  }
  return { available: true, executablePath: CHROMIUM_PATH, installed: true };
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

interface RunResult {
  readonly ok: boolean;
  readonly detail: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error === null) return resolve({ ok: true, detail: '' });
        const why = error.killed ? `timed out after ${timeoutMs} ms` : error.message.split('\n')[0];
        const tail = String(stderr).trim().split('\n').slice(-5).join(' | ');
        resolve({ ok: false, detail: tail === '' ? String(why) : `${why}; ${tail}` });
      },
    );
  });
}
