/**
 * The dashboard end to end, in a real headless browser (Debian's Chromium driven by
 * playwright-core) against the real PostgreSQL server: an application process whose
 * flags come from the PostgreSQL flag provider publishes its metrics, the test causes a
 * mismatch behind the SDK's back, the page shows it, and, once the operator has given the
 * dashboard token, a ramp and a kill clicked in the page reach that process's data path.
 */
import { randomUUID } from 'node:crypto';
import { OpenFeature } from '@openfeature/server-sdk';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { createOpenFeatureFlags } from '../../../adapters/openfeature/index.js';
import {
  createPostgresFlagProvider,
  getMigrationFlags,
  type PostgresFlagProvider,
  setFlag,
  setMigrationFlags,
} from '../../../adapters/postgres-flags/index.js';
import { createPostgresFlagControl, type Dashboard, startDashboard } from '../../../apps/dashboard/index.js';
import { createBackfill, createMetricsPublisher, type MetricsPublisher } from '../../../src/lifecycle/index.js';
import { recordVerification } from '../../../src/lifecycle/state/index.js';
import { createMemoryMetrics } from '../../../src/metrics/memory-metrics.js';
import { rename } from '../../../src/model/mappings.js';
import { defineMigration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { createRepository } from '../../../src/repository/create-repository.js';
import {
  CHROMIUM_ARGS,
  CHROMIUM_INSTALL_TIMEOUT_MS,
  type ChromiumAvailability,
  requireChromium,
} from '../../setup/chromium.js';
import { describeDrivers } from '../../support/drivers.js';
import { userEntity } from '../../support/fixtures.js';

const HOSTILE = `<img src=x onerror="alert('description')"><script>alert('script')</script>`;
const HOSTILE_VALUE = `<img src=y onerror="alert('value')">`;

let availability: ChromiumAvailability = { available: false, reason: 'beforeAll did not run' };
let browser: Browser | undefined;

beforeAll(async () => {
  availability = await requireChromium();
  if (availability.available) {
    browser = await chromium.launch({ executablePath: availability.executablePath, args: [...CHROMIUM_ARGS] });
  }
}, CHROMIUM_INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await OpenFeature.close();
});

/** Waits until `locator`'s text satisfies `check` (the page refreshes on its own). */
async function textOf(locator: Locator, check: (text: string) => boolean, timeout = 10_000): Promise<string> {
  let last = '';
  await vi.waitFor(
    async () => {
      last = (await locator.first().textContent({ timeout: 1000 })) ?? '';
      if (!check(last)) throw new Error(`text is ${JSON.stringify(last)}`);
    },
    { timeout, interval: 100 },
  );
  return last;
}

describeDrivers(
  'dashboard in a browser',
  (getCtx) => {
    const cleanup: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
    });

    it('page: shows the migration, its stage and a caused mismatch; unlocked with the token, a ramp and a kill clicked in the page reach the data path', async ({
      skip,
    }) => {
      if (!availability.available) return skip(`no browser: ${availability.reason}`);
      const ctx = getCtx();
      const { driver, schema } = ctx;
      const flagOptions = { schema, stateSchema: schema };

      // The application: a users table mid-migration, read through flags from the PostgreSQL provider.
      await ctx.sql(
        `CREATE TABLE ${schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
      );
      const users = defineTable({ name: `${schema}.users`, key: 'id', entity: userEntity });
      const migration = defineMigration({
        name: 'users-username',
        description: HOSTILE,
        table: users,
        mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
        defaultStage: 'dualwrite',
      });
      // Backfilled while empty, so reads may go new; the rows come through the repository.
      await createBackfill(driver, migration, { stateSchema: schema }).run();
      await setMigrationFlags(driver, migration, { stage: 'shadow', percent: 0 }, flagOptions);
      // A stored value that is no percentage, and hostile: shown as text, as stored.
      await setFlag(driver, migration.percentFlagKey, HOSTILE_VALUE, { schema });
      const provider: PostgresFlagProvider = createPostgresFlagProvider({ pool: ctx.pgPool({ max: 3 }), schema });
      const domain = `dashboard-${randomUUID()}`;
      await OpenFeature.setProviderAndWait(domain, provider);
      cleanup.push(() => provider.onClose());
      const metrics = createMemoryMetrics();
      const repo = createRepository(migration, { driver, flags: createOpenFeatureFlags({ domain }), metrics });
      cleanup.push(async () => repo.close());
      const publisher: MetricsPublisher = createMetricsPublisher({
        driver,
        metrics,
        stateSchema: schema,
        intervalMs: 200,
      });
      cleanup.push(() => publisher.stop());

      // Traffic, and a mismatch: the new column changed behind the SDK's back, read in shadow.
      await repo.insert({ id: 1, username: 'ada', email: 'ada@example.com' });
      await repo.insert({ id: 2, username: 'grace', email: 'grace@example.com' });
      await ctx.sql(`UPDATE ${schema}.users SET username = 'mallory' WHERE id = 2`);
      expect(await repo.get(1)).toMatchObject({ username: 'ada' });
      expect(await repo.get(2)).toMatchObject({ username: 'grace' });
      expect(metrics.snapshot().migrations[migration.name]).toMatchObject({ comparisons: 2, mismatches: 1 });

      // Verified after the last flag change: nothing has changed the write path since.
      await recordVerification(
        driver,
        migration.name,
        { passed: true, checkedRows: 2, mismatchedRows: 0, missingRows: 0 },
        schema,
      );

      const dashboard: Dashboard = await startDashboard({
        driver,
        migrations: [migration],
        // The page's controls are under test, not the promotion gate's thresholds (their
        // own tests): this gate lets the ramp below through despite the caused mismatch.
        flags: createPostgresFlagControl(driver, { ...flagOptions, gate: { minComparisons: 0, maxMismatchRate: 1 } }),
        stateSchema: schema,
        flagTable: { schema },
        refreshMs: 400,
        seriesBucketMs: 1000,
      });
      cleanup.push(() => dashboard.close());

      const page: Page = await browser!.newPage({ viewport: { width: 1366, height: 768 } });
      cleanup.push(() => page.close());
      const dialogs: string[] = [];
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(dashboard.url);

      const card = page.locator(`section[data-migration="${migration.name}"]`);
      await card.waitFor({ timeout: 10_000 });
      expect(await card.locator('h2').textContent()).toBe('users-username');
      await textOf(card.getByTestId('stage'), (text) => text === 'shadow');
      expect(await card.getByTestId('percent').textContent()).toBe('unknown');
      expect(await card.getByTestId('flags-note').textContent()).toContain(
        `read % flag holds ${HOSTILE_VALUE}, not 0-100`,
      );

      // The mismatch the test caused: field username, values redacted.
      const field = card.locator('[data-testid="mismatch-samples"] td[data-testid="diff-field"]');
      await textOf(field, (text) => text === 'username');
      const sampleRow = await card.locator('[data-testid="mismatch-samples"] tbody tr').first().textContent();
      expect(sampleRow).toMatch(/sha256:/);
      expect(sampleRow).not.toMatch(/mallory|grace/);
      await textOf(card.getByTestId('mismatch-rate'), (text) => text === '50.00%');
      // The charts, drawn by uPlot on canvas: each its series and the guardrail threshold
      // (the guardrails' defaults, as this dashboard was given none), named in its legend.
      // The legend's first row is the time axis; the others are the chart's series.
      const legend = async (testid: string) =>
        (await card.locator(`[data-testid="${testid}"] .u-legend .u-series .u-label`).allTextContents()).slice(1);
      await vi.waitFor(async () => expect(await legend('latency-chart')).toHaveLength(3), { timeout: 10_000 });
      for (const testid of ['mismatch-chart', 'error-chart', 'latency-chart']) {
        expect(await card.locator(`[data-testid="${testid}"] .uplot canvas`).count()).toBe(1);
      }
      expect(await legend('mismatch-chart')).toEqual(['mismatch rate', 'guardrail 1.0%']);
      expect(await legend('error-chart')).toEqual(['old', 'new', 'guardrail (new) 1.0%']);
      expect(await legend('latency-chart')).toEqual(['old p99', 'new p99', 'guardrail (new) 3x old']);
      expect(await card.getByTestId('error-chart').textContent()).toMatch(
        /Latest .+: old 0 of \d+, new 0 of \d+ operations failed/,
      );
      const plot = (await card.getByTestId('mismatch-chart-plot').boundingBox())!;
      expect(plot.width).toBeGreaterThan(200);
      expect(plot.height).toBeGreaterThan(100);
      expect(await card.getByTestId('latency').textContent()).toMatch(/both \(one statement\)/);

      // The charts' window: 5 minutes at 5-second points, picked in the page.
      await page.getByTestId('window-select').selectOption('5m');
      await textOf(card.getByTestId('mismatch-chart'), (text) => text.includes('one point per 5 s'));
      expect(await card.getByTestId('mismatch-chart-plot').getAttribute('aria-label')).toBe(
        'mismatch rate over the last 5 min',
      );
      expect(await card.getByTestId('latency-chart-plot').getAttribute('aria-label')).toBe(
        'p99 latency per side over the last 5 min',
      );
      // Still one canvas each: a refresh updates the charts in place.
      expect(await card.locator('.uplot').count()).toBe(3);

      // The last verification, and nothing after it.
      const verification = card.getByTestId('verification');
      expect(await textOf(verification, (text) => text.includes('rows checked'))).toMatch(
        /^passed .+ \u00b7 2 rows checked, 0 mismatched, 0 missing$/,
      );

      // A hostile description is text, not markup.
      expect(await card.getByTestId('description').textContent()).toBe(HOSTILE);
      expect(await page.locator('img').count()).toBe(0);

      // The promotion gate of the next step, as the control's set() would judge it now.
      expect(await textOf(card.getByTestId('gate'), (text) => text.startsWith('Next step:'))).toMatch(
        /^Next step: shadow \u2192 live 1%: ready \u00b7 2 of 0 comparisons since \d\d:\d\d:\d\d UTC; 1 mismatch$/,
      );

      // At 1366x768, the token field and the controls are in view without scrolling.
      for (const control of [page.getByTestId('token-input'), card.getByTestId('kill'), card.getByTestId('apply')]) {
        const box = (await control.boundingBox())!;
        expect(box.y + box.height).toBeLessThanOrEqual(768);
      }
      expect(await page.evaluate('window.scrollY')).toBe(0);

      // The controls are locked until the operator gives the token: a kill asks for it and changes nothing.
      const gate = page.getByTestId('token-gate');
      expect(await gate.getAttribute('data-unlocked')).toBe('false');
      await card.getByTestId('kill').click();
      expect(await card.getByTestId('control-result').textContent()).toMatch(/controls are locked/);
      expect(await card.getByRole('alertdialog').isHidden()).toBe(true);
      expect(await page.evaluate("document.activeElement?.getAttribute('data-testid')")).toBe('token-input');
      // A wrong token is refused by the server and not kept.
      await page.getByTestId('token-input').fill('not-the-token-0123456789');
      await page.getByTestId('unlock').click();
      await textOf(page.getByTestId('token-state'), (text) => text.includes('wrong'));
      expect(await gate.getAttribute('data-unlocked')).toBe('false');
      expect(await page.evaluate('window.sessionStorage.length')).toBe(0);
      // The right one unlocks the controls, and lasts across a reload of the tab; it is in no URL and not in the page.
      const token = dashboard.token!;
      await page.getByTestId('token-input').fill(token);
      await page.getByTestId('unlock').click();
      await textOf(page.getByTestId('token-state'), (text) => text === 'Controls unlocked.');
      await page.reload();
      await card.waitFor({ timeout: 10_000 });
      expect(await page.getByTestId('token-gate').getAttribute('data-unlocked')).toBe('true');
      expect(page.url()).not.toContain(token);
      expect(await page.content()).not.toContain(token);
      expect(await getMigrationFlags(driver, migration, { schema })).toMatchObject({ stage: 'shadow' });

      // A confirmation comes first: cancelling changes nothing.
      await card.getByTestId('kill').click();
      expect(await card.getByRole('alertdialog').textContent()).toMatch(/Kill migration "users-username"\?/);
      await card.getByTestId('cancel').click();
      expect(await card.getByRole('alertdialog').isHidden()).toBe(true);
      expect(await getMigrationFlags(driver, migration, { schema })).toMatchObject({
        stage: 'shadow',
        raw: { percent: HOSTILE_VALUE },
      });

      // Ramp in the page: live at 100%. The application starts serving new (mallory).
      await card.getByTestId('stage-select').selectOption('live');
      await card.getByTestId('percent-input').fill('100');
      await card.getByTestId('apply').click();
      expect(await card.getByRole('alertdialog').textContent()).toMatch(/stage "live" and read percentage 100%/);
      await card.getByTestId('confirm').click();
      await textOf(card.getByTestId('control-result'), (text) => text.includes('stage live, read 100%'));
      await textOf(card.getByTestId('stage'), (text) => text === 'live');
      await vi.waitFor(async () => expect(await repo.get(2)).toMatchObject({ username: 'mallory' }), {
        timeout: 10_000,
        interval: 100,
      });

      // Kill in the page: every read goes back to old (grace), in the application's process.
      await card.getByTestId('kill').click();
      await card.getByTestId('confirm').click();
      await textOf(card.getByTestId('control-result'), (text) => text.includes('killed'));
      await vi.waitFor(async () => expect(await repo.get(2)).toMatchObject({ username: 'grace' }), {
        timeout: 10_000,
        interval: 100,
      });
      expect(await getMigrationFlags(driver, migration, { schema })).toMatchObject({ stage: 'dualwrite', percent: 0 });
      await textOf(card.getByTestId('stage'), (text) => text === 'dualwrite');
      // Back at dualwrite, the next step serves no more new data: the gate asks nothing of it.
      await textOf(card.getByTestId('gate'), (text) => text.includes('dualwrite \u2192 shadow'));
      expect(await card.getByTestId('gate').textContent()).toBe(
        'Next step: dualwrite \u2192 shadow: ready \u00b7 serves no more new data, so it needs no evidence',
      );
      // The timeline says what happened, newest first, and who did it.
      const timeline = card.locator('[data-testid="timeline"] tbody tr');
      await textOf(timeline.locator('[data-testid="event-what"]'), (text) => text.startsWith('kill:'));
      expect(await timeline.first().textContent()).toMatch(
        /kill: live 100% \u2192 dualwrite 0%flagshift dashboardkilled from the dashboard$/,
      );
      // The ramp's line carries the gate's evidence.
      expect(await timeline.nth(1).textContent()).toMatch(
        /flags: shadow .+ \u2192 live 100%; gate: \d+ of 0 comparisons .+ mismatch(es)?flagshift dashboard-$/,
      );

      // Locking forgets the token in this tab.
      await page.getByTestId('lock').click();
      expect(await page.getByTestId('token-gate').getAttribute('data-unlocked')).toBe('false');
      expect(await page.evaluate('window.sessionStorage.length')).toBe(0);
      // A token kept in the tab that the dashboard no longer takes (it restarted with another) locks the controls on load.
      await page.evaluate(`window.sessionStorage.setItem('flagshift-dashboard-token', 'stale-token-0123456789')`);
      await page.reload();
      await textOf(page.getByTestId('token-state'), (text) => text.includes('no longer works'));
      expect(await page.getByTestId('token-gate').getAttribute('data-unlocked')).toBe('false');
      expect(await page.evaluate('window.sessionStorage.length')).toBe(0);

      if (process.env['FLAGSHIFT_DASHBOARD_SCREENSHOT'] !== undefined) {
        await page.screenshot({ path: process.env['FLAGSHIFT_DASHBOARD_SCREENSHOT'], fullPage: false });
      }
      expect(dialogs).toEqual([]);
      expect(pageErrors).toEqual([]);
    }, 40_000);
  },
  { kinds: ['pg'] },
);
