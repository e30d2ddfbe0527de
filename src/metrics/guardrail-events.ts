/**
 * What a guardrail reports when it trips or is reset: the types exporters and callbacks
 * receive. No entity keys or values, only the migration and the figures that crossed.
 */

/** Which threshold a guardrail crossed, or `manual` for {@link Guardrails.trip}. */
export type GuardrailReason = 'mismatch-rate' | 'new-error-rate' | 'latency-ratio' | 'manual';

/** Every {@link GuardrailReason}, e.g. to pre-create exporter series. */
export const GUARDRAIL_REASONS: readonly GuardrailReason[] = Object.freeze([
  'mismatch-rate',
  'new-error-rate',
  'latency-ratio',
  'manual',
]);

/** A guardrail that tripped: reads of `migration` are held on the old side until a reset. */
export interface GuardrailTrip {
  readonly migration: string;
  readonly reason: GuardrailReason;
  /** ISO-8601 time of the trip. */
  readonly at: string;
  /** The measured rate or ratio that crossed the threshold (`0` for a manual trip). */
  readonly observed: number;
  /** The threshold it crossed (`0` for a manual trip). */
  readonly threshold: number;
  /** Sample behind `observed`: comparisons, new-side reads, or the smaller side's latency count. */
  readonly samples: number;
  /** Window the figures were measured over, in ms. */
  readonly windowMs: number;
  /** A sentence for logs and alerts, naming the migration and the figures. */
  readonly message: string;
}

/** What {@link Guardrails.subscribe} listeners receive. */
export type GuardrailEvent =
  | { readonly type: 'trip'; readonly trip: GuardrailTrip }
  | { readonly type: 'reset'; readonly migration: string; readonly at: string };
