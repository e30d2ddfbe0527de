/**
 * Backfill across processes on the real server: a worker killed with SIGKILL resumes
 * where it stopped, and three workers share one backfill, each row done exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import type { BackfillOptions, BackfillReport } from '../../../src/lifecycle/backfill/backfill-options.js';
import { backfillStatus, listEvents } from '../../../src/lifecycle/state/index.js';
import { verify } from '../../../src/lifecycle/verify.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';
import { createItems, itemsMigration, updateCounts } from '../fixtures/data.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const workerScript = fileURLToPath(new URL('./fixtures/backfill-worker.ts', import.meta.url));

interface Worker {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  waitFor(type: string): Promise<Record<string, unknown>>;
}

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

function spawnWorker(ctx: DriverContext, options: BackfillOptions, waitForGo = false): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=flagshift-source', workerScript], {
    cwd: root,
    env: {
      ...process.env,
      FLAGSHIFT_WORKER: JSON.stringify({
        connectionString: ctx.connectionString,
        schema: ctx.schema,
        // The harness terminates this application's connections after the test, whatever happens.
        applicationName: `flagshift-test-${ctx.schema}`,
        options,
        waitForGo,
      }),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: { type: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline = buffer.indexOf('\n');
    while (newline !== -1) {
      const line = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
      buffer = buffer.slice(newline + 1);
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.type === line['type'])) waiter.resolve(line);
      newline = buffer.indexOf('\n');
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child);
      if (code !== 0 && code !== null) console.error(stderr);
      resolve(code);
    }),
  );
  return {
    child,
    lines,
    exited,
    waitFor: (type) => {
      const seen = lines.find((line) => line['type'] === type);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ type, resolve }));
    },
  };
}

function reportOf(worker: Worker): BackfillReport {
  const line = worker.lines.find((l) => l['type'] === 'report');
  if (line === undefined) throw new Error(`worker reported no result: ${JSON.stringify(worker.lines.at(-1))}`);
  return line as unknown as BackfillReport;
}

describeDrivers(
  'backfill across processes',
  (getCtx) => {
    it('resumability: a worker killed with SIGKILL mid-run resumes and completes with zero mismatches', async () => {
      const ctx = getCtx();
      const rows = 200_000;
      const table = await createItems(ctx.admin, ctx.schema, rows);
      const migration = itemsMigration(table);
      const options: BackfillOptions = {
        batchSize: 1000,
        minBatchSize: 1000,
        maxBatchSize: 1000,
        leaseMs: 1000,
        delayMs: 1,
      };
      const first = spawnWorker(ctx, options);
      // Wait for committed progress, then kill at whatever point the worker is.
      await expect
        .poll(async () => (await backfillStatus(ctx.admin, migration.name, ctx.schema))?.rowsDone ?? 0, {
          timeout: 15_000,
          interval: 20,
        })
        .toBeGreaterThanOrEqual(20_000);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBeNull();
      const killed = (await backfillStatus(ctx.admin, migration.name, ctx.schema))!;
      expect(killed.status).toBe('running');
      expect(killed.rowsDone).toBeLessThan(rows);

      const second = spawnWorker(ctx, options);
      expect(await second.exited).toBe(0);
      const report = reportOf(second);
      // The same pass, resumed: the second worker did exactly what the first had not committed.
      expect(report).toMatchObject({ status: 'done', pass: 1, totalRowsDone: rows });
      expect(report.rowsDone).toBe(rows - killed.rowsDone);

      const verification = await verify(ctx.driver, migration, { stateSchema: ctx.schema, chunkSize: 20_000 });
      expect(verification).toMatchObject({ passed: true, checkedRows: rows, mismatchedRows: 0, missingRows: 0 });
      // At most one batch may be redone; as a batch commits with its checkpoint, none is.
      const counts = await updateCounts(ctx.admin, table);
      expect(counts[0] ?? 0).toBe(0);
      const twice = Object.entries(counts)
        .filter(([updates]) => Number(updates) > 1)
        .reduce((sum, [, n]) => sum + n, 0);
      expect(twice).toBeLessThanOrEqual(1000);
      expect(counts).toEqual({ 1: rows });
    }, 60_000);

    it('three worker processes share one backfill: every range done, every row changed exactly once', async () => {
      const ctx = getCtx();
      const rows = 30_000;
      const table = await createItems(ctx.admin, ctx.schema, rows);
      const migration = itemsMigration(table);
      const options: BackfillOptions = {
        batchSize: 200,
        minBatchSize: 200,
        maxBatchSize: 200,
        ranges: 30,
        delayMs: 5,
        whenDone: 'skip',
      };
      const workers = [0, 1, 2].map(() => spawnWorker(ctx, options, true));
      await Promise.all(workers.map((worker) => worker.waitFor('ready')));
      for (const worker of workers) worker.child.stdin!.write('go\n');
      expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual([0, 0, 0]);
      const reports = workers.map(reportOf);
      expect(reports.map((report) => report.status)).toEqual(['done', 'done', 'done']);
      expect(reports.every((report) => report.pass === 1 && report.rowsChanged > 0)).toBe(true);
      expect(reports.reduce((sum, report) => sum + report.rowsChanged, 0)).toBe(rows);
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: rows });

      const ranges = await ctx.sql<{ status: string; owner: string }>(
        `SELECT status, owner FROM ${ctx.schema}.backfill_ranges ORDER BY range_id`,
      );
      expect(ranges).toHaveLength(30);
      expect(ranges.every((range) => range.status === 'done')).toBe(true);
      expect(new Set(ranges.map((range) => range.owner))).toEqual(new Set(reports.map((report) => report.workerId)));
      const events = await listEvents(ctx.admin, migration.name, ctx.schema);
      expect(events.map((event) => event.details['action'])).toEqual(['started', 'finished']);
      expect(await backfillStatus(ctx.admin, migration.name, ctx.schema)).toMatchObject({
        status: 'done',
        rowsDone: rows,
        rowsChanged: rows,
        rangesDone: 30,
      });
    }, 60_000);
  },
  { kinds: ['pg'] },
);
