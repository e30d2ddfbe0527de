/**
 * How fast a stage change reaches every process: N separate Node processes
 * (bench/propagation-reader.ts) each resolve a migration's stage flag through the
 * PostgreSQL flag provider every 5 ms, while the stage is moved back and forth
 * (dualwrite <-> shadow, which the promotion gate checks but never holds) through the CLI
 * (`flagshift flags set`, a subprocess as a user runs it), the API (`setMigrationFlags`)
 * and the dashboard's HTTP endpoint. Each delay runs from the change's commit (the server's
 * commit timestamp, `track_commit_timestamp`) to the first read in each process that
 * returns the new stage, on the same wall clock. Then the server is restarted, and the
 * LISTEN connections are killed, with a change made at once: how long until every process
 * serves it, from the server being back (or the kill).
 *
 * Writes bench/propagation-results.json and .md. Run: npm run bench:propagation
 * (env PROPAGATION_PROCESSES=16,32 and PROPAGATION_CHANGES=20 per path change the size).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createPostgresFlagControl, startDashboard } from 'flagshift/dashboard';
import { createBackfill, expand } from 'flagshift/lifecycle';
import { createPgDriver } from 'flagshift/pg';
import { setMigrationFlags } from 'flagshift/postgres-flags';
import pg from 'pg';
import { LISTEN_ACTIVITY } from '../adapters/postgres-flags/listen-source.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js';
import { currentLoad, describeMachine, type Machine } from './machine.js';
import { propagationMigration as migration } from './propagation-config.js';
import { quantile, round, sleep } from './stats.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const processCounts = (process.env['PROPAGATION_PROCESSES'] ?? '16,32').split(',').map(Number);
const changesPerPath = Number(process.env['PROPAGATION_CHANGES'] ?? 20);
const outages = Number(process.env['PROPAGATION_OUTAGES'] ?? 3);
const STAGE_KEY = migration.stageFlagKey;
/** Longest wait for every process to follow one change before the run is called failed. */
const FOLLOW_TIMEOUT_MS = 30_000;

/** Wall-clock milliseconds with sub-millisecond resolution, as the readers stamp reads. */
const now = () => performance.timeOrigin + performance.now();

type Path = 'cli' | 'api' | 'dashboard';

interface Reader {
  readonly child: ChildProcess;
  /** Each `seen` line: the value and when the process first read it. */
  readonly seen: { value: string; at: number }[];
  readonly events: string[];
  stderr: string;
}

function startReader(connectionString: string): { reader: Reader; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/propagation-reader.ts', connectionString, STAGE_KEY],
    {
      cwd: root,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const reader: Reader = { child, seen: [], events: [], stderr: '' };
  child.stderr!.on('data', (chunk: Buffer) => {
    reader.stderr += chunk.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`reader ${child.pid} exited (${code}): ${reader.stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [kind, a, b] = line.split(' ');
      if (kind === 'seen') reader.seen.push({ value: a!, at: Number(b) });
      else if (kind === 'event') reader.events.push(`${a} ${b}`);
      else if (kind === 'ready') resolve();
    });
  });
  return { reader, ready };
}

async function stopReaders(readers: readonly Reader[]): Promise<void> {
  await Promise.all(
    readers.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.stdin!.end();
        }),
    ),
  );
}

/** When each reader first read `value` after its `marks`-th `seen` line. */
async function followed(readers: readonly Reader[], marks: readonly number[], value: string): Promise<number[]> {
  const deadline = now() + FOLLOW_TIMEOUT_MS;
  for (;;) {
    const times = readers.map((r, i) => r.seen.slice(marks[i]).find((s) => s.value === value)?.at);
    if (times.every((t) => t !== undefined)) return times as number[];
    if (now() > deadline) {
      const missing = readers.filter((_, i) => times[i] === undefined).map((r) => r.child.pid);
      throw new Error(`processes ${missing.join(', ')} never served "${value}" within ${FOLLOW_TIMEOUT_MS} ms`);
    }
    await sleep(2);
  }
}

/** The commit time of the stage flag's current row, from the server's commit timestamps. */
async function commitTime(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ at: number }>(
    `SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 * 1000 AS at FROM flagshift.flags WHERE key = $1`,
    [STAGE_KEY],
  );
  return rows[0]!.at;
}

function summarize(values: readonly number[]) {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p50Ms: round(quantile(sorted, 0.5)),
    p99Ms: round(quantile(sorted, 0.99)),
    maxMs: round(sorted[sorted.length - 1] ?? Number.NaN),
    over1s: sorted.filter((v) => v > 1_000).length,
  };
}

interface PathResult {
  /** Commit -> first read of the new stage, one sample per process and change. */
  readonly propagation: ReturnType<typeof summarize>;
  /** How long the change itself took to make (for the CLI, the whole command). */
  readonly changeCall: ReturnType<typeof summarize>;
  readonly loadAverage: number;
}

interface OutageResult {
  /** From the server being back (or the connection being killed) to each process serving the change made then. */
  readonly recovery: ReturnType<typeof summarize>;
  /** From that change's commit to each process serving it. */
  readonly propagation: ReturnType<typeof summarize>;
  readonly loadAverage: number;
}

async function main(): Promise<void> {
  const server = await startEmbeddedPostgres({
    settings: {
      max_connections: '400',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      track_commit_timestamp: 'on',
    },
    tempDirPrefix: 'flagshift-bench-propagation-',
    removeOnExit: true,
    restartable: true,
  });
  const url = server.connectionString;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  const driver = createPgDriver(pool, { kind: 'pool' });
  const postgres = (await pool.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
  const machine = await describeMachine(postgres);
  await pool.query('CREATE TABLE bench_users (id integer PRIMARY KEY, user_name text NOT NULL)');
  await pool.query(`INSERT INTO bench_users SELECT i, 'user ' || i FROM generate_series(1, 1000) AS i`);
  await expand(driver, migration);
  await createBackfill(driver, migration).run();
  await setMigrationFlags(driver, migration, { stage: 'dualwrite' }, { actor: 'bench' });

  const dashboard = await startDashboard({
    driver,
    migrations: [migration],
    flags: createPostgresFlagControl(driver, { actor: 'bench' }),
  });
  let stage: 'dualwrite' | 'shadow' = 'dualwrite';
  const change: Record<Path, (to: string) => Promise<void>> = {
    api: async (to) => {
      await setMigrationFlags(driver, migration, { stage: to as 'shadow' }, { actor: 'bench' });
    },
    cli: (to) =>
      new Promise((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            'bin/flagshift.js',
            '--migrations',
            'bench/propagation-config.ts',
            'flags',
            'set',
            migration.name,
            '--stage',
            to,
          ],
          { cwd: root, env: { ...process.env, DATABASE_URL: url }, stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child.once('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`flags set exited ${code}: ${stderr}`)),
        );
      }),
    dashboard: async (to) => {
      const response = await fetch(new URL(`/api/migrations/${migration.name}/flags`, dashboard.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-flagshift-token': dashboard.token! },
        body: JSON.stringify({ stage: to }),
      });
      if (!response.ok) throw new Error(`dashboard answered ${response.status}: ${await response.text()}`);
    },
  };

  /** Moves the stage once through `path`; returns the commit time and how long the call took. */
  async function move(
    path: Path,
    readers: readonly Reader[],
  ): Promise<{ delays: number[]; call: number; commit: number }> {
    stage = stage === 'dualwrite' ? 'shadow' : 'dualwrite';
    const marks = readers.map((r) => r.seen.length);
    const started = now();
    await change[path](stage);
    const call = now() - started;
    const commit = await commitTime(pool);
    const times = await followed(readers, marks, stage);
    return { delays: times.map((t) => t - commit), call, commit };
  }

  /** Makes a change as soon as the server answers again; `since` is when it was back. */
  async function moveAfterOutage(
    readers: readonly Reader[],
    since: number,
  ): Promise<{ recovery: number[]; delays: number[] }> {
    stage = stage === 'dualwrite' ? 'shadow' : 'dualwrite';
    const marks = readers.map((r) => r.seen.length);
    for (let attempt = 1; ; attempt++) {
      try {
        await change.api(stage);
        break;
      } catch (error) {
        // The pool's idle connections died with the server: the first use of each fails.
        if (attempt >= 10) throw error;
      }
    }
    const commit = await commitTime(pool);
    const times = await followed(readers, marks, stage);
    return { recovery: times.map((t) => t - since), delays: times.map((t) => t - commit) };
  }

  const results: Record<string, unknown> = {};
  try {
    for (const n of processCounts) {
      const readers: Reader[] = [];
      try {
        const started = Array.from({ length: n }, () => startReader(url));
        readers.push(...started.map((s) => s.reader));
        await Promise.all(started.map((s) => s.ready));
        const connections = await pool.query<{ app: string; n: number }>(
          `SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY 1 ORDER BY 1`,
        );
        const paths: Partial<Record<Path, PathResult>> = {};
        for (const path of ['api', 'dashboard', 'cli'] as const) {
          const delays: number[] = [];
          const calls: number[] = [];
          for (let i = 0; i < changesPerPath; i++) {
            const result = await move(path, readers);
            delays.push(...result.delays);
            calls.push(result.call);
            await sleep(100 + Math.random() * 200);
          }
          paths[path] = { propagation: summarize(delays), changeCall: summarize(calls), loadAverage: currentLoad() };
          console.log(`N=${n} ${path}: ${JSON.stringify(paths[path])}`);
        }

        const killed: { recovery: number[]; delays: number[] } = { recovery: [], delays: [] };
        const restarted: { recovery: number[]; delays: number[] } = { recovery: [], delays: [] };
        for (let i = 0; i < outages; i++) {
          await pool.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'flagshift-propagation-reader' AND ${LISTEN_ACTIVITY}`,
          );
          const result = await moveAfterOutage(readers, now());
          killed.recovery.push(...result.recovery);
          killed.delays.push(...result.delays);
          await sleep(500);

          await server.restart();
          const back = now();
          const after = await moveAfterOutage(readers, back);
          restarted.recovery.push(...after.recovery);
          restarted.delays.push(...after.delays);
          // Every process listens again before the next round.
          await sleep(2_000);
        }
        const outage = (r: typeof killed): OutageResult => ({
          recovery: summarize(r.recovery),
          propagation: summarize(r.delays),
          loadAverage: currentLoad(),
        });
        results[`n${n}`] = {
          processes: n,
          changesPerPath,
          paths,
          listenKilled: outage(killed),
          serverRestarted: outage(restarted),
          connectionsByApplication: Object.fromEntries(connections.rows.map((r) => [r.app || '(none)', r.n])),
        };
        console.log(`N=${n} outages: ${JSON.stringify({ killed: outage(killed), restarted: outage(restarted) })}`);
      } finally {
        await stopReaders(readers);
      }
    }
  } finally {
    await dashboard.close();
    await pool.end();
    await server.stop();
  }
  machine.loadAverageEnd = currentLoad();
  const report = { generatedAt: new Date().toISOString(), machine, results };
  await writeFile(new URL('propagation-results.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(new URL('propagation-results.md', import.meta.url), markdown(report));
}

function markdown(report: { generatedAt: string; machine: Machine; results: Record<string, unknown> }): string {
  const lines = [
    '# Propagation of a stage change',
    '',
    `Generated ${report.generatedAt} by \`npm run bench:propagation\` on ${report.machine.cpus} CPUs (${report.machine.cpuModel}), load ${report.machine.loadAverageStart} -> ${report.machine.loadAverageEnd}.`,
    "Delay: from the change's commit to the first read in each process that returns the new stage (one sample per process and change). Change call: how long making the change took (the CLI: the whole `flagshift flags set` subprocess).",
    '',
    '| processes | through | samples | p50 ms | p99 ms | max ms | over 1 s | change call p50 / max ms | load |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const value of Object.values(report.results)) {
    const r = value as {
      processes: number;
      paths: Record<string, PathResult>;
      listenKilled: OutageResult;
      serverRestarted: OutageResult;
    };
    for (const [path, p] of Object.entries(r.paths)) {
      lines.push(
        `| ${r.processes} | ${path} | ${p.propagation.count} | ${p.propagation.p50Ms} | ${p.propagation.p99Ms} | ${p.propagation.maxMs} | ${p.propagation.over1s} | ${p.changeCall.p50Ms} / ${p.changeCall.maxMs} | ${p.loadAverage} |`,
      );
    }
    for (const [label, since, o] of [
      ['LISTEN killed', 'kill', r.listenKilled],
      ['server restarted', 'back', r.serverRestarted],
    ] as const) {
      lines.push(
        `| ${r.processes} | ${label}: from ${since} | ${o.recovery.count} | ${o.recovery.p50Ms} | ${o.recovery.p99Ms} | ${o.recovery.maxMs} | ${o.recovery.over1s} | | ${o.loadAverage} |`,
        `| ${r.processes} | ${label}: from commit | ${o.propagation.count} | ${o.propagation.p50Ms} | ${o.propagation.p99Ms} | ${o.propagation.maxMs} | ${o.propagation.over1s} | | |`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

await main();
