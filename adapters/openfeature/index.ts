/**
 * `flagshift/openfeature`: routes migrations by flags from any OpenFeature provider
 * (`@openfeature/server-sdk`, an optional peer dependency).
 *
 * @example
 * ```ts
 * import { InMemoryProvider, OpenFeature } from '@openfeature/server-sdk';
 * import { createOpenFeatureFlags } from 'flagshift/openfeature';
 *
 * await OpenFeature.setProviderAndWait(
 *   'migrations',
 *   new InMemoryProvider({
 *     'users-rename.stage': { variants: { on: 'dualwrite' }, defaultVariant: 'on', disabled: false },
 *   }),
 * );
 * const flags = createOpenFeatureFlags({ domain: 'migrations' });
 * await flags.resolve('users-rename.stage', 'string', {}); // 'dualwrite'
 * ```
 *
 * @module
 */
export {
  createOpenFeatureFlags,
  type EvaluationContextLike,
  type EvaluationContextValueLike,
  type EvaluationDetailsLike,
  type OpenFeatureClientLike,
  OpenFeatureEvaluationError,
  type OpenFeatureFlagsOptions,
  toEvaluationContext,
} from './openfeature-flags.js';
