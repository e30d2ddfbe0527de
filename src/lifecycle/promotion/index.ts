/**
 * Promotion: what a change of a migration's flags needs before it is written, checked
 * the same way by the API, the CLI and the dashboard.
 */
export {
  describePosition,
  type FlagPosition,
  newShare,
  nextPosition,
  RAMP_PERCENTS,
  servesMoreNew,
} from './flag-position.js';
export { DEFAULT_PROMOTION_GATE, type PromotionGateOptions, resolveGate } from './gate-options.js';
export {
  checkPromotion,
  describeMove,
  type PromotionCheck,
  type PromotionCheckOptions,
  type PromotionEvidence,
} from './promotion-check.js';
export { PromotionRefusedError } from './promotion-refused-error.js';
