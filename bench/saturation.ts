/**
 * Saturated throughput: 16 callers on a pool of 8, so a connection is never idle and what
 * the SDK adds per call shows up as lost throughput rather than hidden in queueing. Raw
 * `pg` sends the SDK's own statement for the stage, prepared under a name, on the same
 * pool. The sides run in alternating blocks (raw then SDK, then SDK then raw, ...): each
 * block pair gives one throughput ratio, and the blocks give its spread.
 */
import type { Repository } from 'flagshift';
import type pg from 'pg';
import { openConnections, type PreparingRunner } from './comparison.js';
import type { User, UsersMigration } from './fixture.js';
import { usersRepository } from './fixture.js';
import { random } from './interleave.js';
import { type PointStatements, prepared, twoQueryShadowRead } from './point-ops.js';
import { median, ratio } from './stats.js';

/** One saturated comparison. */
export interface SaturationResult {
  /** `off`, `shadow`, `live`, or `shadow/two-queries` (baseline: the LaunchDarkly-style read). */
  readonly name: string;
  readonly callers: number;
  readonly poolSize: number;
  /** Operations per second of the baseline, median over blocks. */
  readonly rawOpsPerSecond: number;
  /** Operations per second of the SDK, median over blocks. */
  readonly sdkOpsPerSecond: number;
  /** SDK over baseline throughput, median of the per-block ratios. */
  readonly ratio: number;
  readonly blockRatios: readonly number[];
}

/** Knobs of {@link runSaturation}. */
export interface SaturationOptions {
  readonly connectionString: string;
  readonly migration: UsersMigration;
  readonly statements: PointStatements;
  readonly rows: number;
  /** Operations per side per block. */
  readonly opsPerBlock: number;
  readonly blocks: number;
  readonly log: (line: string) => void;
}

const CALLERS = 16;
/**
 * Unmeasured blocks of each side before a comparison's first measured one. After one,
 * V8 was still optimizing functions of the SDK's read in the first measured blocks of
 * each stage (three to eleven compilations a block), on threads that took the cores the
 * server's backends needed.
 */
const WARMUP_BLOCKS = 5;
const POOL = 8;

type Op = (id: number) => Promise<unknown>;

/** Runs `ops` operations of `op` from {@link CALLERS} callers; returns operations per second. */
async function throughput(op: Op, ops: number, next: () => number, rows: number): Promise<number> {
  let started = 0;
  const caller = async () => {
    while (started < ops) {
      started++;
      await op(1 + Math.floor(next() * rows));
    }
  };
  const begin = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, caller));
  return ops / ((performance.now() - begin) / 1000);
}

/** Runs the saturated comparisons: off, shadow and live against the same SQL, and the two-query shadow read. */
export async function runSaturation(options: SaturationOptions): Promise<SaturationResult[]> {
  const pool = (await openConnections(options.connectionString, 'pool8')) as pg.Pool;
  const runner = pool as unknown as PreparingRunner;
  const next = random(11);
  const results: SaturationResult[] = [];
  const pairs: [string, 'off' | 'shadow' | 'live', (repo: Repository<User, 'id'>) => Op][] = [
    [
      'off',
      'off',
      () => {
        const raw = prepared(runner, options.statements.read.off, 'bench_sat_off');
        return (id) => raw([id]);
      },
    ],
    [
      'shadow',
      'shadow',
      () => {
        const raw = prepared(runner, options.statements.read.shadow, 'bench_sat_shadow');
        return (id) => raw([id]);
      },
    ],
    [
      'live',
      'live',
      () => {
        const raw = prepared(runner, options.statements.read.live, 'bench_sat_live');
        return (id) => raw([id]);
      },
    ],
    ['shadow/two-queries', 'shadow', () => twoQueryShadowRead(runner, options.statements)],
  ];
  for (const [name, stage, baseline] of pairs) {
    const repo = usersRepository(options.migration, pool, stage);
    await repo.check();
    const raw = baseline(repo);
    const sdk: Op = (id) => repo.get(id);
    // Warm-up of both sides: plans prepared on every connection, and code compiled.
    for (let block = 0; block < WARMUP_BLOCKS; block++) {
      await throughput(raw, options.opsPerBlock, next, options.rows);
      await throughput(sdk, options.opsPerBlock, next, options.rows);
    }
    const rawRates: number[] = [];
    const sdkRates: number[] = [];
    const ratios: number[] = [];
    for (let block = 0; block < options.blocks; block++) {
      let rawRate: number;
      let sdkRate: number;
      if ((block & 1) === 0) {
        rawRate = await throughput(raw, options.opsPerBlock, next, options.rows);
        sdkRate = await throughput(sdk, options.opsPerBlock, next, options.rows);
      } else {
        sdkRate = await throughput(sdk, options.opsPerBlock, next, options.rows);
        rawRate = await throughput(raw, options.opsPerBlock, next, options.rows);
      }
      rawRates.push(rawRate);
      sdkRates.push(sdkRate);
      ratios.push(ratio(sdkRate, rawRate));
    }
    repo.close();
    const result: SaturationResult = {
      name,
      callers: CALLERS,
      poolSize: POOL,
      rawOpsPerSecond: Math.round(median(rawRates)),
      sdkOpsPerSecond: Math.round(median(sdkRates)),
      ratio: ratio(median(ratios), 1),
      blockRatios: ratios,
    };
    options.log(
      `${name.padEnd(20)} ${CALLERS} callers, pool ${POOL}: baseline ${result.rawOpsPerSecond} ops/s  sdk ${result.sdkOpsPerSecond} ops/s  x${result.ratio} [${Math.min(...ratios)}-${Math.max(...ratios)}]`,
    );
    results.push(result);
  }
  await pool.end();
  return results;
}
