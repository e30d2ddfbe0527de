/**
 * The thresholds of the promotion gate, and their validation. The defaults ask for
 * more evidence than the guardrails trip on: a guardrail stops what is going wrong, the
 * gate asks that nothing went wrong before more reads are served new.
 */
import { z } from 'zod';
import { type OptionExpectations, parseOptions } from '../../kernel/index.js';

/** What a move that serves more new data needs from the fleet's published metrics. */
export interface PromotionGateOptions {
  /**
   * Comparisons the fleet must have published since the migration's last stage change.
   * @default 1000
   */
  readonly minComparisons?: number;
  /**
   * Highest share (0 to 1) of those comparisons that may have mismatched.
   * @default 0
   */
  readonly maxMismatchRate?: number;
  /**
   * Highest share (0 to 1) of new-side operations that failed, as the fleet's processes
   * report them (since each started).
   * @default 0.01
   */
  readonly maxNewErrorRate?: number;
  /**
   * New-side operations the fleet must report before the error rate is judged.
   * @default 100
   */
  readonly minNewOperations?: number;
  /**
   * Highest ratio of the new side's p99 latency to the old side's (round trips that
   * touched one side only).
   * @default 3
   */
  readonly maxLatencyRatio?: number;
  /**
   * Latency measurements each side must have before the ratio is judged.
   * @default 100
   */
  readonly minLatencySamples?: number;
}

/** Thresholds with every default applied. */
export type ResolvedGate = Required<PromotionGateOptions>;

/** The defaults of {@link PromotionGateOptions}. */
export const DEFAULT_PROMOTION_GATE: ResolvedGate = Object.freeze({
  minComparisons: 1000,
  maxMismatchRate: 0,
  maxNewErrorRate: 0.01,
  minNewOperations: 100,
  maxLatencyRatio: 3,
  minLatencySamples: 100,
});

const count = z.number().int().min(0).max(1_000_000_000).optional();
const share = z.number().min(0).max(1).optional();

const gateSchema = z.strictObject({
  minComparisons: count,
  maxMismatchRate: share,
  maxNewErrorRate: share,
  minNewOperations: count,
  maxLatencyRatio: z.number().min(1).max(1000).optional(),
  minLatencySamples: count,
});

const EXPECTED = {
  minComparisons: 'a whole number from 0 to 1000000000',
  maxMismatchRate: 'a number from 0 to 1',
  maxNewErrorRate: 'a number from 0 to 1',
  minNewOperations: 'a whole number from 0 to 1000000000',
  maxLatencyRatio: 'a number from 1 to 1000',
  minLatencySamples: 'a whole number from 0 to 1000000000',
} as const satisfies OptionExpectations;

/** Validates `options` and applies the defaults. */
export function resolveGate(options: PromotionGateOptions | undefined): ResolvedGate {
  const parsed = parseOptions('promotion gate', gateSchema, options ?? {}, EXPECTED);
  return { ...DEFAULT_PROMOTION_GATE, ...stripUndefined(parsed) };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
