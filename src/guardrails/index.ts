/** Guardrails: thresholds over a sliding window that hold reads on the old side. */
export { createGuardrails, type GuardrailStatus, type Guardrails, type SafeStageState } from './guardrails.js';
export {
  type GuardrailsOptions,
  type GuardrailThresholds,
  type ResolvedThresholds,
  type ValidGuardrailsOptions,
  validateGuardrailsOptions,
} from './options.js';
export type { GuardrailWindowFigures, GuardrailWindowLatency } from './window.js';
