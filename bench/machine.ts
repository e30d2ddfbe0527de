/** The machine a benchmark ran on, for the report. */
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';

/** What the report says about the machine. */
export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
  /** `SELECT version()` of the server. */
  readonly postgres: string;
  /** 1-minute load average when the run started and ended: other work on the machine skews results. */
  readonly loadAverageStart: number;
  loadAverageEnd: number;
}

/** Reads the machine's description; `postgres` is filled in by the caller. */
export async function describeMachine(postgres: string): Promise<Machine> {
  let cpuModel = 'unknown';
  try {
    const cpuinfo = await readFile('/proc/cpuinfo', 'utf8');
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux: the model stays unknown.
  }
  return {
    cpus: availableParallelism(),
    cpuModel,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${process.platform} ${release()}`,
    postgres,
    loadAverageStart: Math.round(loadavg()[0]! * 100) / 100,
    loadAverageEnd: Number.NaN,
  };
}

/** The current 1-minute load average. */
export function currentLoad(): number {
  return Math.round(loadavg()[0]! * 100) / 100;
}
