/** The typed, flag-routed repository. */
export { createRepository } from './create-repository.js';
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
