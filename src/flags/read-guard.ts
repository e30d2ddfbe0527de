/**
 * The seam through which something outside the data path (the guardrails) holds a
 * migration's reads on the old side. The repository consults it on every read.
 */

/** Holds a migration's reads on the old side, e.g. after a guardrail tripped. */
export interface ReadGuard {
  /** Whether reads of `migration` may be served from the new side now. Must be fast and must not throw. */
  allowsNewReads(migration: string): boolean;
}
