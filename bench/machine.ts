/** The machine a benchmark ran on, for the report. */
import { readFileSync } from 'node:fs';
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

/** A clock of CPU time, in microseconds, and what it counts. */
export interface CpuClock {
  /** `main thread`: the thread's own scheduler account (Linux); `process`: every thread's. */
  readonly source: 'main thread' | 'process';
  /** The CPU time so far. Call it with nothing else of the thread's own to do: it may sleep a millisecond first. */
  read(): Promise<number>;
}

/**
 * The CPU time of this process's main thread, from its scheduler account
 * (`/proc/self/task/<pid>/schedstat`, nanoseconds); where there is none (not Linux, or a
 * kernel without scheduler statistics, whose file reads zeros), the whole process's
 * (`process.cpuUsage()`), which also counts the collector's and the compiler's threads.
 *
 * The kernel brings a running thread's account up to date only at a scheduler tick or
 * a switch, so a thread reading its own may see it up to a tick (several milliseconds)
 * old. Each reading sleeps a millisecond first: going to sleep settles the account.
 */
export function mainThreadCpuClock(): CpuClock {
  const path = `/proc/self/task/${process.pid}/schedstat`;
  let usable: boolean;
  try {
    // The main thread has run for a while by now: an account of zero is none.
    usable = readSchedstatUs(path) > 0;
  } catch {
    usable = false;
  }
  if (!usable) {
    return {
      source: 'process',
      read: async () => {
        const { user, system } = process.cpuUsage();
        return user + system;
      },
    };
  }
  return {
    source: 'main thread',
    read: async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return readSchedstatUs(path);
    },
  };
}

function readSchedstatUs(path: string): number {
  const ns = Number(readFileSync(path, 'utf8').split(' ', 1)[0]);
  if (!Number.isFinite(ns)) throw new Error(`${path}: no CPU time`);
  return ns / 1000;
}
