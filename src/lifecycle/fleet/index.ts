/**
 * A fleet: one migration definition run across many databases (shards) or schemas of one
 * database (tenants), a canary first, the rest with bounded parallelism, each member's
 * progress kept in its own state tables so a crashed coordinator resumes where it was.
 */
export { migrationInSchema } from './in-schema.js';
export { fleetStatus, runFleet } from './run-fleet.js';
export type {
  FleetMember,
  FleetMemberState,
  FleetMemberStatus,
  FleetOptions,
  FleetReport,
  FleetStatus,
  FleetStatusOptions,
  FleetStep,
} from './types.js';
