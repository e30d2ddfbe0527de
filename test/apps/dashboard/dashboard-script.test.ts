import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bundleDashboardScript,
  DASHBOARD_BUNDLE_PATH,
  loadDashboardScript,
  readDashboardScript,
} from '../../../apps/dashboard/dashboard-script.js';
import { ConfigurationError } from '../../../src/kernel/errors.js';

describe('dashboard page script', () => {
  it('from the sources: one classic script bundled from browser/, safe to inline, read once per process', async () => {
    const script = await loadDashboardScript();
    // A classic script (the page has no type="module"): no module syntax left.
    expect(script).not.toMatch(/^\s*(import|export)\s/m);
    expect(script).toMatch(/^"use strict";\n\(\(\) => \{/);
    expect(script).toContain('"/api/state"');
    expect(script).not.toMatch(/<\/script|<!--/i);
    // Type-only imports of the server's API types leave nothing of the server in the page.
    expect(script).not.toMatch(/node:|collectDashboardState/);
    expect(await loadDashboardScript()).toBe(script);
    expect(await bundleDashboardScript()).toBe(script);
  });

  describe('built', () => {
    let dir: string;
    let moduleUrl: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'flagshift-dashboard-'));
      moduleUrl = pathToFileURL(join(dir, 'dist/apps/dashboard/dashboard-script.js')).href;
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function writeBundle(text: string): Promise<void> {
      const path = join(dir, 'dist/apps/dashboard', DASHBOARD_BUNDLE_PATH);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, text);
    }

    it('reads the bundle next to the compiled dashboard, as written', async () => {
      await writeBundle('"use strict";\n(() => {})();\n');
      expect(await readDashboardScript(moduleUrl)).toBe('"use strict";\n(() => {})();\n');
    });

    it('missing: a configuration error naming the file and how to get it, not a blank page', async () => {
      const read = readDashboardScript(moduleUrl);
      await expect(read).rejects.toThrow(ConfigurationError);
      await expect(read).rejects.toThrow(
        `dashboard page script ${join(dir, 'dist/apps/dashboard/browser/dashboard.js')} can't be read (ENOENT): ` +
          'this flagshift was built without it; `npm run build` writes it',
      );
    });

    it('a bundle that would end the inline script early is refused, naming what it contains', async () => {
      await writeBundle('document.title = "</SCRIPT><script>alert(1)</script>";');
      await expect(readDashboardScript(moduleUrl)).rejects.toThrow(
        /dashboard page script .*dashboard\.js contains "<\/SCRIPT", which would end the page's inline script/,
      );
    });
  });
});
