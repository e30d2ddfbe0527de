/**
 * Which of a migration's columns and sync triggers the database has, and whether it was
 * contracted: the core reads both off the catalog and the event log.
 */
export { contractedAt, type SchemaState, schemaState } from '../../../src/internal.js';
