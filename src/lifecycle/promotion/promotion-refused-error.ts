/**
 * The refusal of a flag change that {@link checkPromotion} found problems with: a
 * `StageTransitionError` that keeps the check, so each caller can say how to override it
 * in its own terms (`{ force: true }` in code, `--force` on the command line).
 */
import { StageTransitionError } from '../../kernel/index.js';
import type { PromotionCheck } from './promotion-check.js';

/** A flag change refused by the promotion checks; nothing was written. */
export class PromotionRefusedError extends StageTransitionError {
  /** `moving migration "x" from shadow to live 10%`. */
  readonly subject: string;
  /** What the checks found, with the evidence read for a gated move. */
  readonly check: PromotionCheck;

  constructor(subject: string, check: PromotionCheck, override: string) {
    super(`${subject} refused: ${check.problems.join('; and ')}; or pass ${override}, which is logged`);
    this.name = 'PromotionRefusedError';
    this.subject = subject;
    this.check = check;
  }

  /** The same refusal, naming `override` as the way past it. */
  withOverride(override: string): PromotionRefusedError {
    return new PromotionRefusedError(this.subject, this.check, override);
  }
}
