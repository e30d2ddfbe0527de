/**
 * The fleet coordinator: one migration definition run across many databases or schemas.
 * The canary member goes first, alone; then the others, a bounded number at once. Each
 * member runs expand, backfill, verify and (once its stage is `complete`) contract, the
 * same public steps a single database runs, each starting from where the member's own
 * state says it is, so a run after a crash resumes rather than restarts. A member that
 * fails stops only itself, and its status says why.
 */
import type { Migration } from '../../model/index.js';
import { createBackfill } from '../backfill/index.js';
import { contract, expand } from '../ddl/index.js';
import { FLEET_STEPS, type FleetStep, recordFleetStep } from '../state/index.js';
import { verify } from '../verify.js';
import { type ResolvedFleet, type ResolvedMember, resolveFleet } from './fleet-members.js';
import { messageOf, readMemberStage, readMemberStatus } from './member-status.js';
import type { FleetMemberStatus, FleetOptions, FleetReport, FleetStatus, FleetStatusOptions } from './types.js';

/**
 * Runs `migration` across the fleet's members: the canary through `through` first, then
 * the rest, `concurrency` at a time. Resolves when every member is through, waits, failed
 * or was skipped (never rejects for a member's failure: see each member's status).
 *
 * @throws ConfigurationError when an option is invalid (before anything runs).
 *
 * @example
 * ```ts
 * import { runFleet } from 'flagshift/lifecycle';
 *
 * const report = await runFleet(usernameRename, {
 *   members: [
 *     { name: 'acme', driver, schema: 'acme' },
 *     { name: 'globex', driver, schema: 'globex' },
 *   ],
 *   canary: 'acme',
 *   concurrency: 2,
 * });
 * for (const m of report.members) console.log(m.member, m.state, m.next ?? '', m.reason ?? '');
 * ```
 */
export async function runFleet(migration: Migration, options: FleetOptions): Promise<FleetReport> {
  const fleet = resolveFleet(migration, options);
  const statuses = new Map<string, FleetMemberStatus>();
  const report = (status: FleetMemberStatus): FleetMemberStatus => {
    statuses.set(status.member, status);
    try {
      options.onProgress?.(status);
    } catch {
      // A broken progress listener must not stop a member half-way.
    }
    return status;
  };
  const canary = await runMember(fleet, fleet.canary, options, report);
  const rest = fleet.members.filter((member) => member !== fleet.canary);
  if (canary.state === 'failed' || options.signal?.aborted === true) {
    const why = canary.state === 'failed' ? `canary "${canary.member}" failed: ${canary.reason}` : undefined;
    await eachBounded(rest, fleet.concurrency, async (member) => {
      const status = await readMemberStatus(member);
      report(why === undefined ? status : { ...status, state: 'skipped', reason: why });
    });
  } else {
    await eachBounded(rest, fleet.concurrency, (member) => runMember(fleet, member, options, report));
  }
  const members = fleet.members.map((member) => statuses.get(member.name)!);
  return {
    migration: migration.name,
    canary: fleet.canary.name,
    members,
    ok: members.every((status) => status.state !== 'failed' && status.state !== 'skipped'),
    stopped: options.signal?.aborted === true,
  };
}

/**
 * Every member's status, read off the members themselves (and, with `flags`, each
 * member's stage), `concurrency` at a time. Reads only: creates nothing.
 *
 * @example
 * ```ts
 * import { fleetStatus } from 'flagshift/lifecycle';
 *
 * const status = await fleetStatus(usernameRename, { members });
 * console.table(status.members.map((m) => ({ member: m.member, state: m.state, next: m.next, why: m.reason })));
 * ```
 */
export async function fleetStatus(migration: Migration, options: FleetStatusOptions): Promise<FleetStatus> {
  const fleet = resolveFleet(migration, options);
  const members = new Array<FleetMemberStatus>(fleet.members.length);
  await eachBounded(fleet.members, fleet.concurrency, async (member) => {
    let status = await readMemberStatus(member);
    if (fleet.flags !== undefined && status.state !== 'failed') {
      const stage = await readMemberStage(member, fleet.flags);
      if ('stage' in stage) status = { ...status, stage: stage.stage };
    }
    members[fleet.members.indexOf(member)] = status;
  });
  return { migration: migration.name, canary: fleet.canary.name, members };
}

/** Runs the member's steps from where it is through `fleet.through`; its last status. */
async function runMember(
  fleet: ResolvedFleet,
  member: ResolvedMember,
  options: FleetOptions,
  report: (status: FleetMemberStatus) => FleetMemberStatus,
): Promise<FleetMemberStatus> {
  const last = FLEET_STEPS.indexOf(fleet.through);
  let previous: FleetStep | undefined;
  for (;;) {
    const status = await readMemberStatus(member);
    const next = status.next;
    if (options.signal?.aborted === true) return report(status);
    // A member that can't be read (state failed, no next step) or is contracted stops here.
    if (next === undefined || FLEET_STEPS.indexOf(next) > last) return report(status);
    if (next === previous) {
      // The step ended without error, yet the member doesn't show it done: running it
      // again would loop. Say so rather than spin.
      return report(await fail(member, next, `${next} finished but the member does not show it done`));
    }
    let stage: string | undefined;
    if (next === 'contract') {
      const read = await readMemberStage(member, fleet.flags!);
      if ('problem' in read) return report({ ...status, state: 'waiting', reason: read.problem });
      if (read.stage !== 'complete') {
        return report({
          ...status,
          state: 'waiting',
          stage: read.stage,
          reason: `stage is "${read.stage}"; contract waits for "complete"`,
        });
      }
      stage = read.stage;
    }
    report({ ...status, state: 'running', reason: `${next} started` });
    try {
      await recordFleetStep(
        member.driver,
        member.migration.name,
        { step: next, outcome: 'running', error: undefined },
        member.stateSchema,
      );
      const problem = await runStep(fleet, member, next, options);
      if (problem === 'stopped') return report(await readMemberStatus(member));
      if (problem !== undefined) return report(await fail(member, next, problem));
      await recordFleetStep(
        member.driver,
        member.migration.name,
        { step: next, outcome: 'done', error: undefined },
        member.stateSchema,
      );
    } catch (error) {
      return report(await fail(member, next, messageOf(error)));
    }
    if (stage !== undefined) return report(await readMemberStatus(member));
    previous = next;
  }
}

/** Runs one step; resolves a problem that fails it without an error, `stopped`, or `undefined`. */
async function runStep(
  fleet: ResolvedFleet,
  member: ResolvedMember,
  step: FleetStep,
  options: FleetOptions,
): Promise<string | undefined> {
  const { driver, migration, stateSchema } = member;
  switch (step) {
    case 'expand':
      await expand(driver, migration, { ...options.expand, stateSchema });
      return undefined;
    case 'backfill': {
      const run = await createBackfill(driver, migration, {
        ...options.backfill,
        stateSchema,
        workerId: `fleet:${fleet.coordinator}:${member.name}`,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }).run();
      return run.status === 'cancelled' ? 'stopped' : undefined;
    }
    case 'verify': {
      const result = await verify(driver, migration, { ...options.verify, stateSchema });
      if (result.passed) return undefined;
      return `verification found ${result.mismatchedRows} mismatched and ${result.missingRows} missing of ${result.checkedRows} rows`;
    }
    case 'contract':
      await contract(driver, migration, { ...options.contract, stateSchema, stage: 'complete' });
      return undefined;
  }
}

/** Records `step` failed on the member (when its database still answers) and returns its status. */
async function fail(member: ResolvedMember, step: FleetStep, error: string): Promise<FleetMemberStatus> {
  try {
    await recordFleetStep(member.driver, member.migration.name, { step, outcome: 'failed', error }, member.stateSchema);
  } catch {
    // The member is unreachable: the run's report still says why, a later status can't.
  }
  const status = await readMemberStatus(member);
  if (status.state === 'failed') return status;
  return { ...status, state: 'failed', reason: `${step} failed: ${error}` };
}

/** Calls `work` on each item, at most `limit` at once. */
async function eachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
