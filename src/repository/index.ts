/** The typed, flag-routed repository. */
export { createRepository } from './create-repository.js';
export type { CallOptions, FindQuery, Insertable, KeyInput, OrderBy, Repository, RepositoryOptions } from './types.js';
