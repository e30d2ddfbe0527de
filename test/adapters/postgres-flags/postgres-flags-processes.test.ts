import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDriver } from '../../../adapters/pg/index.js';
import { setFlag } from '../../../adapters/postgres-flags/index.js';
import { LISTEN_ACTIVITY } from '../../../adapters/postgres-flags/listen-source.js';
import { testDatabaseUrl } from '../../support/pg-connections.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = 'test/apps/cli/fixtures/flag-listener.ts';
const FLAG = 'flagshift.users-username.stage';

interface Listener {
  readonly child: ChildProcess;
  /** Lines printed so far, with the parent's clock when each arrived. */
  readonly lines: { text: string; at: number }[];
  waitFor(prefix: string, timeoutMs: number): Promise<{ text: string; at: number }>;
}

function startListener(connectionString: string, schema: string): Listener {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=flagshift-source', fixture, connectionString, schema, FLAG],
    { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const lines: { text: string; at: number }[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    lines.push({ text, at: performance.now() });
    for (const wake of waiters) wake();
  });
  return {
    child,
    lines,
    waitFor(prefix, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = lines.find((l) => l.text.startsWith(prefix));
          if (line === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(line);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no "${prefix}" line from pid ${child.pid} in ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
  };
}

describe('postgres flag provider across processes', () => {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  let pool: pg.Pool;
  const listeners: Listener[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 3 });
    pool.on('error', () => undefined);
    await pool.query(`CREATE SCHEMA ${schema}`);
    await setFlag(createPgDriver(pool), FLAG, 'dualwrite', { schema });
  });

  afterAll(async () => {
    for (const { child } of listeners) child.stdin?.end();
    await Promise.all(
      listeners.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  });

  it('notify: one flag change reaches three running processes within one second', async () => {
    for (let i = 0; i < 3; i++) listeners.push(startListener(testDatabaseUrl(), schema));
    // Starting a process (tsx, the SDK, a connection) takes far longer than the bound: wait until each listens.
    await Promise.all(listeners.map((listener) => listener.waitFor('ready', 25_000)));
    const listening = await pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND ${LISTEN_ACTIVITY}`,
      [`flag-listener-${schema}`],
    );
    expect(listening.rows[0].n).toBe(3);

    const writtenAt = performance.now();
    await setFlag(createPgDriver(pool), FLAG, 'shadow', { schema });
    const heard = await Promise.all(listeners.map((listener) => listener.waitFor('changed', 5_000)));

    for (const line of heard) {
      expect(JSON.parse(line.text.slice('changed '.length))).toMatchObject({ flagsChanged: [FLAG], value: 'shadow' });
    }
    const slowest = Math.max(...heard.map((line) => line.at - writtenAt));
    // The bound the issue sets for a change to reach every process.
    expect(slowest).toBeLessThan(1_000);
  });
});
