/** Flags: the flag source seam, the stage resolver, routing and sticky bucketing. */
export { bucketOf, isInReadPercentage } from './bucketing.js';
export type { FlagContext, FlagSource, FlagValueType } from './flag-source.js';
export { createMemoryFlags, type MemoryFlags, type SimulatedFailure } from './memory-flags.js';
export type { ReadGuard } from './read-guard.js';
export { guardedRoute, heldRoute, MigrationRouter, type PinnedDecisions, type Route, routeFor } from './router.js';
export {
  createStageResolver,
  type FlagDecision,
  type MigrationFlags,
  type StageResolver,
  type StageResolverOptions,
} from './stage-resolver.js';
