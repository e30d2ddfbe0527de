/**
 * One member's place in the migration, read off the member itself: its catalog (expanded,
 * contracted), its backfill checkpoint, its verifications and the contract gate, and its
 * fleet step log for what those can't show (a step running, or why it failed). Reading the
 * progress from where the steps leave it, rather than from a copy the coordinator keeps,
 * means a coordinator that crashed between a step and its bookkeeping can neither lose
 * nor invent progress: the next run starts where the member actually is.
 */
import type { FlagSource } from '../../flags/index.js';
import { isStage } from '../../model/index.js';
import { contractedAt, contractGate, schemaState } from '../ddl/index.js';
import { backfillStatus, FLEET_STEPS, type FleetStep, lastFleetStep } from '../state/index.js';
import type { ResolvedMember } from './fleet-members.js';
import type { FleetMemberStatus } from './types.js';

/** The member's status; a member that can't be read is `failed`, with the error as its reason. */
export async function readMemberStatus(member: ResolvedMember): Promise<FleetMemberStatus> {
  try {
    return await readStatus(member);
  } catch (error) {
    return {
      member: member.name,
      completed: [],
      next: undefined,
      state: 'failed',
      reason: `can't read the member: ${messageOf(error)}`,
    };
  }
}

async function readStatus(member: ResolvedMember): Promise<FleetMemberStatus> {
  const { driver, migration, stateSchema } = member;
  const base = { member: member.name };
  const schema = await schemaState(driver, migration);
  // Only a member whose old columns are gone can be contracted: the check reads the catalog again.
  if (schema.missingOld.length > 0 && (await contractedAt(driver, migration, stateSchema)) !== undefined) {
    return { ...base, completed: [...FLEET_STEPS], next: undefined, state: 'contracted', reason: undefined };
  }
  if (!schema.tableExists) {
    return {
      ...base,
      completed: [],
      next: 'expand',
      state: 'failed',
      reason: `table ${migration.table.table.display} does not exist`,
    };
  }
  const completed: FleetStep[] = [];
  const backfill = await backfillStatus(driver, migration.name, stateSchema);
  if (schema.missingNew.length === 0 && schema.syncTriggers) {
    completed.push('expand');
    if (backfill?.status === 'done') {
      completed.push('backfill');
      const gate = await contractGate(driver, migration, { stateSchema, stage: 'complete' });
      if (gate.ok) completed.push('verify');
    }
  }
  const next = FLEET_STEPS[completed.length];
  const progress =
    backfill === undefined
      ? {}
      : {
          backfill: {
            rowsDone: backfill.rowsDone,
            totalEstimate: backfill.totalEstimate,
            done: backfill.status === 'done',
          },
        };
  const record = await lastFleetStep(driver, migration.name, stateSchema);
  if (record !== undefined && record.step === next && record.outcome !== 'done') {
    const reason =
      record.outcome === 'failed'
        ? `${next} failed: ${record.error ?? 'no reason recorded'}`
        : `${next} started at ${record.at.toISOString()}`;
    return { ...base, completed, next, state: record.outcome, reason, ...progress };
  }
  return { ...base, completed, next, state: 'ready', reason: undefined, ...progress };
}

/** The member's stage, as its stage flag says in its context; a reason instead when the flag can't be read. */
export async function readMemberStage(
  member: ResolvedMember,
  flags: FlagSource,
): Promise<{ stage: string } | { problem: string }> {
  const key = member.migration.stageFlagKey;
  try {
    const value = await flags.resolve(key, 'string', member.context);
    if (isStage(value)) return { stage: value };
    return { problem: `stage flag "${key}" is not a stage for ${JSON.stringify(member.context)}: ${String(value)}` };
  } catch (error) {
    return { problem: `stage flag "${key}" can't be read for ${JSON.stringify(member.context)}: ${messageOf(error)}` };
  }
}

/** An error's message, for a status line. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
