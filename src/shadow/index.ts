/** Comparing old and new: per entity and per result set, and redacting what a mismatch sample carries. */
export {
  type CompareOptions,
  type DiffKind,
  deepEqual,
  diffEntities,
  diffResultSets,
  type EntityDiff,
  type FieldDiff,
  type ResultSetDiff,
  resultSetFieldDiffs,
} from './compare.js';
export { bytesOf, redactValue } from './redact.js';
