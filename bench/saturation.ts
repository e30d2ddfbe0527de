/**
 * Saturated throughput: 16 callers on a pool of 8, so a connection is never idle and what
 * the SDK adds per call shows up as lost throughput rather than hidden in queueing. Raw
 * `pg` sends the SDK's own statement for the stage, prepared under a name, on the same
 * pool. The sides run in alternating blocks (raw then SDK, then SDK then raw, ...): each
 * block pair gives one throughput ratio, and the blocks give its spread. Each block also
 * counts the CPU the main thread spent per call, where the callers' work runs: at
 * saturation that is what throughput is lost to. A control runs raw `pg` on both sides
 * the same way: how far its ratio, 1 by construction, strays is the resolution of the
 * comparisons on the machine.
 */
import { createPgDriver } from 'flagshift/pg';
import type pg from 'pg';
import { openConnections, type PreparingRunner } from './comparison.js';
import type { UsersMigration } from './fixture.js';
import { usersRepository } from './fixture.js';
import { random } from './interleave.js';
import { type CpuClock, mainThreadCpuClock } from './machine.js';
import { type PointStatements, prepared, twoQueryShadowRead } from './point-ops.js';
import { median, ratio, round } from './stats.js';

/** One saturated comparison. */
export interface SaturationResult {
  /**
   * `off`, `shadow`, `live`, `shadow/two-queries` (baseline: the LaunchDarkly-style read),
   * `off/over-driver` (baseline: the SDK's own pg driver sending the same statement, so the
   * ratio is what the repository costs over its driver), or `off/raw-vs-raw` (both sides
   * raw `pg`: the spread of a ratio that is 1).
   */
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
  /** What {@link rawCpuUsPerCall} and {@link sdkCpuUsPerCall} count: the main thread's CPU, or (off Linux) the process's. */
  readonly cpuSource: CpuClock['source'];
  /** Microseconds of CPU per call of the baseline, median over blocks. */
  readonly rawCpuUsPerCall: number;
  /** Microseconds of CPU per call of the SDK, median over blocks. */
  readonly sdkCpuUsPerCall: number;
  /** The SDK's CPU per call minus the baseline's, median of the block pairs. */
  readonly cpuUsAdded: number;
  readonly blockCpuUsAdded: readonly number[];
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

/** What one block measured. */
interface Block {
  readonly opsPerSecond: number;
  readonly cpuUsPerCall: number;
}

/** Runs `ops` operations of `op` from {@link CALLERS} callers. */
async function throughput(op: Op, ops: number, next: () => number, rows: number, cpu: CpuClock): Promise<Block> {
  let started = 0;
  const caller = async () => {
    while (started < ops) {
      started++;
      await op(1 + Math.floor(next() * rows));
    }
  };
  const cpuBefore = await cpu.read();
  const begin = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, caller));
  const seconds = (performance.now() - begin) / 1000;
  return { opsPerSecond: ops / seconds, cpuUsPerCall: ((await cpu.read()) - cpuBefore) / ops };
}

/**
 * Runs the saturated comparisons: off, shadow and live against the same SQL, the two-query
 * shadow read, the repository against its own driver, and last the control (raw `pg` on
 * both sides).
 */
export async function runSaturation(options: SaturationOptions): Promise<SaturationResult[]> {
  const pool = (await openConnections(options.connectionString, 'pool8')) as pg.Pool;
  const runner = pool as unknown as PreparingRunner;
  const next = random(11);
  const cpu = mainThreadCpuClock();
  const results: SaturationResult[] = [];
  /** A side that reads by key with `text` prepared under `name`, as raw `pg`. */
  const preparedRead = (text: string, name: string) => (): Op => {
    const raw = prepared(runner, text, name);
    return (id) => raw([id]);
  };
  // [name, the SDK's stage, baseline, measured side (the SDK's read when undefined)].
  const pairs: [string, 'off' | 'shadow' | 'live', () => Op, (() => Op)?][] = [
    ['off', 'off', preparedRead(options.statements.read.off, 'bench_sat_off')],
    ['shadow', 'shadow', preparedRead(options.statements.read.shadow, 'bench_sat_shadow')],
    ['live', 'live', preparedRead(options.statements.read.live, 'bench_sat_live')],
    ['shadow/two-queries', 'shadow', () => twoQueryShadowRead(runner, options.statements)],
    // The repository against its own driver: the same statement through `createPgDriver`,
    // which sends it as its own protocol messages, as the repository's read does.
    [
      'off/over-driver',
      'off',
      () => {
        const driver = createPgDriver(pool);
        const text = options.statements.read.off;
        return (id) => driver.query(text, [id]);
      },
    ],
    // The control: raw against raw, the same statement under a second name, measured as
    // the others are. Its blocks say how far a ratio that is 1 strays on this machine.
    [
      'off/raw-vs-raw',
      'off',
      preparedRead(options.statements.read.off, 'bench_sat_off'),
      preparedRead(options.statements.read.off, 'bench_sat_off_control'),
    ],
  ];
  for (const [name, stage, baseline, measured] of pairs) {
    // The control's measured side is raw `pg` too: no repository.
    const repo = measured === undefined ? usersRepository(options.migration, pool, stage) : undefined;
    await repo?.check();
    const raw = baseline();
    const sdk: Op = measured?.() ?? ((id) => repo!.get(id));
    const run = (op: Op) => throughput(op, options.opsPerBlock, next, options.rows, cpu);
    // Warm-up of both sides: plans prepared on every connection, and code compiled.
    for (let block = 0; block < WARMUP_BLOCKS; block++) {
      await run(raw);
      await run(sdk);
    }
    const rawBlocks: Block[] = [];
    const sdkBlocks: Block[] = [];
    const ratios: number[] = [];
    const cpuAdded: number[] = [];
    for (let block = 0; block < options.blocks; block++) {
      let rawBlock: Block;
      let sdkBlock: Block;
      if ((block & 1) === 0) {
        rawBlock = await run(raw);
        sdkBlock = await run(sdk);
      } else {
        sdkBlock = await run(sdk);
        rawBlock = await run(raw);
      }
      rawBlocks.push(rawBlock);
      sdkBlocks.push(sdkBlock);
      ratios.push(ratio(sdkBlock.opsPerSecond, rawBlock.opsPerSecond));
      cpuAdded.push(round(sdkBlock.cpuUsPerCall - rawBlock.cpuUsPerCall));
    }
    repo?.close();
    const result: SaturationResult = {
      name,
      callers: CALLERS,
      poolSize: POOL,
      rawOpsPerSecond: Math.round(median(rawBlocks.map((b) => b.opsPerSecond))),
      sdkOpsPerSecond: Math.round(median(sdkBlocks.map((b) => b.opsPerSecond))),
      ratio: ratio(median(ratios), 1),
      blockRatios: ratios,
      cpuSource: cpu.source,
      rawCpuUsPerCall: round(median(rawBlocks.map((b) => b.cpuUsPerCall))),
      sdkCpuUsPerCall: round(median(sdkBlocks.map((b) => b.cpuUsPerCall))),
      cpuUsAdded: round(median(cpuAdded)),
      blockCpuUsAdded: cpuAdded,
    };
    options.log(
      `${name.padEnd(20)} ${CALLERS} callers, pool ${POOL}: baseline ${result.rawOpsPerSecond} ops/s  sdk ${result.sdkOpsPerSecond} ops/s  x${result.ratio} [${Math.min(...ratios)}-${Math.max(...ratios)}]; ${cpu.source} CPU ${result.rawCpuUsPerCall} / ${result.sdkCpuUsPerCall} us per call, ${result.cpuUsAdded >= 0 ? '+' : ''}${result.cpuUsAdded} [${Math.min(...cpuAdded)} to ${Math.max(...cpuAdded)}]`,
    );
    results.push(result);
  }
  await pool.end();
  return results;
}
