/** The typed, flag-routed repository. */
export { createRepository } from './create-repository.js';
export { keyText } from './keys.js';
export { type MismatchReport, reportMismatch } from './report-mismatch.js';
export { blamedSide } from './retry-blame.js';
export type {
  CallOptions,
  EqualityOperators,
  FieldOperators,
  FindQuery,
  Insertable,
  KeyInput,
  OrderBy,
  Page,
  PageQuery,
  RangeOperators,
  Repository,
  RepositoryOptions,
  TextOperators,
  Where,
} from './types.js';
