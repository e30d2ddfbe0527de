/**
 * The dashboard under attack, over real HTTP against a real flag table: every hostile
 * request (no token, a wrong one, the token in the URL, a cross-site form, a DNS rebinding
 * `Host`, a read-only dashboard) is refused and the flag table and event log are exactly
 * as before. The same change with the token, from the page's origin, does go through,
 * so each refusal is the guard's doing, not a change that could never have worked.
 */
import { networkInterfaces } from 'node:os';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { setFlag } from '../../../adapters/postgres-flags/index.js';
import { createPostgresFlagControl, type Dashboard, startDashboard } from '../../../apps/dashboard/index.js';
import type { Queryable } from '../../../src/kernel/driver.js';
import { listEvents } from '../../../src/lifecycle/state/index.js';
import { rename } from '../../../src/model/mappings.js';
import { defineMigration, type Migration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { describeDrivers } from '../../support/drivers.js';
import { userEntity, usersMigration } from '../../support/fixtures.js';
import { type CallInit, call } from './http.js';

const TOKEN = 'correct-horse-battery-staple-0123';

const open: Dashboard[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((dashboard) => dashboard.close()));
});

async function start(options: Parameters<typeof startDashboard>[0]): Promise<Dashboard> {
  const dashboard = await startDashboard(options);
  open.push(dashboard);
  return dashboard;
}

describeDrivers('dashboard security', (getCtx) => {
  /** A dashboard over the test's flag table, the migration at shadow 0 %, and a snapshot of what a change would touch. */
  async function setup(options: Partial<Parameters<typeof startDashboard>[0]> = {}) {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx);
    await setFlag(ctx.driver, migration.stageFlagKey, 'shadow', { schema: ctx.schema });
    await setFlag(ctx.driver, migration.percentFlagKey, 0, { schema: ctx.schema });
    const dashboard = await start({
      driver: ctx.driver,
      migrations: [migration],
      flags: createPostgresFlagControl(ctx.driver, { schema: ctx.schema, stateSchema: ctx.schema }),
      stateSchema: ctx.schema,
      flagTable: { schema: ctx.schema },
      token: TOKEN,
      ...options,
    });
    const snapshot = () => stored(ctx.driver, ctx.schema, migration);
    return { ctx, migration, dashboard, before: await snapshot(), snapshot };
  }

  it('hostile requests: no token, wrong token, token in the URL, cross-site forms, rebinding Host, preflight: refused, nothing changed', async () => {
    const { dashboard, migration, before, snapshot } = await setup();
    const { url } = dashboard;
    const port = new URL(url).port;
    const kill = `/api/migrations/${migration.name}/kill`;
    const flags = `/api/migrations/${migration.name}/flags`;
    const sameOrigin = { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' };

    const hostile: [string, string, CallInit, number][] = [
      ['no token', kill, { method: 'POST', body: {}, headers: sameOrigin }, 401],
      ['empty token', kill, { method: 'POST', body: {}, headers: sameOrigin, token: '' }, 401],
      ['wrong token', kill, { method: 'POST', body: {}, headers: sameOrigin, token: `${TOKEN.slice(0, -1)}4` }, 401],
      ['token prefix', kill, { method: 'POST', body: {}, headers: sameOrigin, token: TOKEN.slice(0, 16) }, 401],
      ['token twice', flags, { method: 'POST', body: { stage: 'dualwrite' }, token: `${TOKEN}, ${TOKEN}` }, 401],
      ['token in the query string', `${kill}?token=${TOKEN}`, { method: 'POST', body: {}, headers: sameOrigin }, 400],
      [
        'token in the query string and the header',
        `${flags}?x-flagshift-token=${TOKEN}`,
        { method: 'POST', body: { stage: 'dualwrite' }, headers: sameOrigin, token: TOKEN },
        400,
      ],
      [
        'token in a bearer header',
        kill,
        { method: 'POST', body: {}, headers: { ...sameOrigin, authorization: `Bearer ${TOKEN}` } },
        401,
      ],
      [
        'cross-site form post',
        flags,
        {
          method: 'POST',
          body: 'stage=dualwrite',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            origin: 'https://evil.example',
            'sec-fetch-site': 'cross-site',
          },
        },
        415,
      ],
      [
        'cross-site text/plain form carrying JSON',
        flags,
        {
          method: 'POST',
          body: '{"stage":"dualwrite"}',
          headers: { 'content-type': 'text/plain', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
        },
        415,
      ],
      [
        'cross-site JSON, even with the token',
        kill,
        { method: 'POST', body: {}, headers: { origin: 'https://evil.example' }, token: TOKEN },
        403,
      ],
      [
        'cross-site per Sec-Fetch-Site, even with the token',
        kill,
        { method: 'POST', body: {}, headers: { 'sec-fetch-site': 'same-site' }, token: TOKEN },
        403,
      ],
      ['opaque origin', kill, { method: 'POST', body: {}, headers: { origin: 'null' }, token: TOKEN }, 403],
      [
        'DNS rebinding Host, even with the token',
        kill,
        {
          method: 'POST',
          body: {},
          headers: {
            host: `evil.example:${port}`,
            origin: `http://evil.example:${port}`,
            'sec-fetch-site': 'same-origin',
          },
          token: TOKEN,
        },
        421,
      ],
      [
        'CORS preflight',
        kill,
        {
          method: 'OPTIONS',
          headers: {
            origin: 'https://evil.example',
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type, x-flagshift-token',
          },
        },
        405,
      ],
    ];
    for (const [what, path, init, status] of hostile) {
      const answer = await call(url, path, init);
      expect({ what, status: answer.status }).toEqual({ what, status });
      expect(answer.json).toMatchObject({ ok: false });
      // A refusal never tells the caller the token, nor grants a cross-origin read.
      expect(answer.text).not.toContain(TOKEN);
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
      expect(answer.headers['access-control-allow-headers']).toBeUndefined();
      if (status === 401) expect(answer.headers['www-authenticate']).toContain('x-flagshift-token');
    }
    expect(await snapshot()).toEqual(before);

    // The rebinding Host gets nothing, not even the state.
    expect((await call(url, '/api/state', { headers: { host: `evil.example:${port}` } })).status).toBe(421);
    expect((await call(url, '/', { headers: { host: `evil.example:${port}` } })).status).toBe(421);

    // The same change, with the token, from the page's origin, goes through: the guards were what stopped the rest.
    const done = await call(url, kill, { method: 'POST', body: {}, headers: sameOrigin, token: TOKEN });
    expect(done.status).toBe(200);
    expect(await snapshot()).not.toEqual(before);
    expect((await snapshot()).flags).toMatchObject({ [migration.stageFlagKey]: 'dualwrite' });
  });

  it('token check: 200 for the token, 401 for another, and it changes nothing', async () => {
    const { dashboard, before, snapshot } = await setup();
    const right = await call(dashboard.url, '/api/token', { method: 'POST', body: {}, token: TOKEN });
    expect(right.status).toBe(200);
    expect(right.json.ok).toBe(true);
    const wrong = await call(dashboard.url, '/api/token', { method: 'POST', body: {}, token: 'x'.repeat(32) });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('the dashboard token in the x-flagshift-token header is wrong');
    const inUrl = await call(dashboard.url, `/api/token?t=${TOKEN}`, { method: 'POST', body: {}, token: TOKEN });
    expect(inUrl.status).toBe(400);
    expect(await snapshot()).toEqual(before);
  });

  it('read-only: with a flag control and readOnly, no change route exists even with the token; the flags are still shown', async () => {
    const { dashboard, migration, before, snapshot } = await setup({ readOnly: true, token: undefined });
    expect(dashboard.token).toBeUndefined();
    for (const path of [`/api/migrations/${migration.name}/kill`, `/api/migrations/${migration.name}/flags`]) {
      const answer = await call(dashboard.url, path, { method: 'POST', body: { stage: 'dualwrite' }, token: TOKEN });
      expect({ path, status: answer.status }).toEqual({ path, status: 404 });
    }
    const state = (await call(dashboard.url, '/api/state')).json;
    expect(state.controls).toBe(false);
    expect(state.migrations[0].flags.value).toMatchObject({ stage: 'shadow', percent: 0 });
    expect(await snapshot()).toEqual(before);
  });

  it('generated token: 256 random bits, new per dashboard, never in the page, the state, logs of the dashboard object or errors', async () => {
    const { dashboard, migration, before, snapshot } = await setup({ token: undefined });
    const token = dashboard.token!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const other = await start({ driver: getCtx().driver, migrations: [migration], flags: { set: noop, kill: noop } });
    expect(other.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(other.token).not.toBe(token);

    expect(JSON.stringify(dashboard)).not.toContain(token);
    expect(inspect(dashboard, { showHidden: false })).not.toContain(token);
    expect(`${Object.values(dashboard)}`).not.toContain(token);
    const page = await call(dashboard.url, '/');
    expect(page.text).not.toContain(token);
    expect(page.text).toContain('id="token-gate"');
    expect((await call(dashboard.url, '/api/state')).text).not.toContain(token);
    const refused = await call(dashboard.url, `/api/migrations/${migration.name}/kill`, { method: 'POST', body: {} });
    expect(refused.status).toBe(401);
    expect(await snapshot()).toEqual(before);
    const done = await call(dashboard.url, `/api/migrations/${migration.name}/kill`, {
      method: 'POST',
      body: {},
      token,
    });
    expect(done.status).toBe(200);
  });
});

describe('dashboard security: options and binding', () => {
  const down: Queryable = {
    query: async () => {
      throw new Error('no database in this test');
    },
  };
  function someMigration(): Migration {
    return defineMigration({
      name: 'users-username',
      table: defineTable({ name: 'users', key: 'id', entity: userEntity }),
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
      defaultStage: 'off',
    });
  }

  it('token option: too short or with spaces is refused without quoting it', async () => {
    const base = { driver: down, migrations: [someMigration()], flags: { set: noop, kill: noop } };
    const short = 'hunter2-secret';
    await expect(start({ ...base, token: short })).rejects.toThrow(
      'dashboard option "token" must be at least 16 characters, got 14',
    );
    await expect(start({ ...base, token: short })).rejects.not.toThrow(short);
    const spaced = 'correct horse battery staple';
    await expect(start({ ...base, token: spaced })).rejects.toThrow(/option "token" must be visible ASCII/);
    await expect(start({ ...base, token: spaced })).rejects.not.toThrow(spaced);
  });

  it('every address: needs allowedHosts; then answers those names and loopback, and refuses any other Host', async () => {
    const base = { driver: down, migrations: [someMigration()], flags: { set: noop, kill: noop }, token: TOKEN };
    await expect(start({ ...base, host: '0.0.0.0' })).rejects.toThrow(
      /dashboard listening on every address \(0\.0\.0\.0\) needs option "allowedHosts"/,
    );
    await expect(start({ ...base, allowedHosts: ['dash example'] })).rejects.toThrow(
      /option "allowedHosts\.0" must be a host name or address/,
    );
    await expect(start({ ...base, allowedHosts: ['fd00::1'] })).rejects.toThrow(/IPv6 address in brackets/);

    const dashboard = await start({ ...base, host: '0.0.0.0', allowedHosts: ['Dash.Example', 'ops.example:8443'] });
    const port = new URL(dashboard.url).port;
    const local = `http://127.0.0.1:${port}/`;
    const statusFor = async (host: string) => (await call(local, '/api/state', { headers: { host } })).status;
    // A name without a port answers on any (behind a proxy, the port is the proxy's).
    expect(await statusFor('dash.example')).toBe(200);
    expect(await statusFor(`dash.example:${port}`)).toBe(200);
    expect(await statusFor('ops.example:8443')).toBe(200);
    expect(await statusFor(`localhost:${port}`)).toBe(200);
    // The address in the dashboard's own URL, as a browser opening it sends it.
    expect(dashboard.url).toBe(`http://0.0.0.0:${port}/`);
    expect(await statusFor(`0.0.0.0:${port}`)).toBe(200);
    expect(await statusFor('ops.example')).toBe(421);
    expect(await statusFor(`ops.example:${port}`)).toBe(421);
    expect(await statusFor(`evil.example:${port}`)).toBe(421);
    expect(await statusFor(`dash.example.evil.example:${port}`)).toBe(421);
    expect(await statusFor(`localhost:${Number(port) + 1}`)).toBe(421);
    expect(await statusFor('dash.example:99999')).toBe(421);
  });

  it('a non-loopback address: answers that address only, not a rebinding name nor localhost', async ({ skip }) => {
    const address = Object.values(networkInterfaces())
      .flat()
      .find((entry) => entry !== undefined && entry.family === 'IPv4' && !entry.internal)?.address;
    if (address === undefined) return skip('this machine has no non-loopback IPv4 address');
    const dashboard = await start({
      driver: down,
      migrations: [someMigration()],
      flags: { set: noop, kill: noop },
      token: TOKEN,
      host: address,
    });
    expect(dashboard.url).toBe(`http://${address}:${new URL(dashboard.url).port}/`);
    const port = new URL(dashboard.url).port;
    const statusFor = async (host: string) => (await call(dashboard.url, '/api/state', { headers: { host } })).status;
    expect(await statusFor(`${address}:${port}`)).toBe(200);
    expect(await statusFor(`evil.example:${port}`)).toBe(421);
    expect(await statusFor(`localhost:${port}`)).toBe(421);
  });
});

async function noop(): Promise<unknown> {
  return undefined;
}

/** What a change could touch: the flag table's rows and the migration's event log. */
async function stored(db: Queryable, schema: string, migration: Migration) {
  const { rows } = await db.query<{ key: string; value: unknown; updated_at: Date; updated_by: string | null }>(
    `SELECT key, value, updated_at, updated_by FROM "${schema}"."flags" ORDER BY key`,
  );
  const events = await listEvents(db, migration.name, schema);
  return {
    flags: Object.fromEntries(rows.map((row) => [row.key, row.value])),
    rows: rows.map((row) => ({ ...row, updated_at: new Date(row.updated_at).toISOString() })),
    events: events.length,
  };
}
