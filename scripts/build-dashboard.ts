/**
 * The build's second step, after `tsc`: bundles the dashboard page's script from
 * `apps/dashboard/browser/` into `dist/apps/dashboard/browser/dashboard.js`, where the
 * compiled dashboard reads it. esbuild runs here, at build time only; the published package
 * serves the file as written.
 *
 * Run: `npm run build` (which runs this with tsx after `tsc`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleDashboardScript, DASHBOARD_BUNDLE_PATH } from '../apps/dashboard/dashboard-script.js';

const target = fileURLToPath(new URL(`../dist/apps/dashboard/${DASHBOARD_BUNDLE_PATH}`, import.meta.url));
const script = await bundleDashboardScript();
await mkdir(dirname(target), { recursive: true });
await writeFile(target, script);
console.log(`dashboard page script: ${target} (${Buffer.byteLength(script)} bytes)`);
