/**
 * The fleet's public types: its members, the options of a run, and the status of each
 * member and of the fleet. Every module of this folder may import from here.
 */
import type { FlagContext, FlagSource } from '../../flags/index.js';
import type { Driver } from '../../kernel/index.js';
import type { BackfillOptions } from '../backfill/index.js';
import type { ContractOptions, ExpandOptions } from '../ddl/index.js';
import type { FleetStep } from '../state/index.js';
import type { VerifyOptions } from '../verify.js';

export type { FleetStep } from '../state/index.js';

/** One database, or one schema of a database, that the migration runs in. */
export interface FleetMember {
  /** Unique name, shown by status: the shard or tenant. 1-200 characters. */
  readonly name: string;
  /** The member's database. Members that are schemas of one database may share a driver. */
  readonly driver: Driver;
  /**
   * The schema the migration's tables live in for this member (schema per tenant): the
   * migration runs as {@link migrationInSchema} gives it.
   * @default the schema the migration names (the member is a database of its own)
   */
  readonly schema?: string;
  /**
   * Schema of the member's state tables, where its progress lives. Members that share a
   * database need one each (the state is kept per migration name).
   * @default 'flagshift', or `flagshift_<schema>` for a member with a `schema`
   */
  readonly stateSchema?: string;
  /**
   * The flag evaluation context the member's application processes use (pass the same to
   * their repositories' `context`): the fleet reads the member's stage with it, and a flag
   * rule on the attribute gives the member a stage of its own.
   * @default `{ tenant: name }` for a member with a `schema`, else `{ shard: name }`
   */
  readonly context?: FlagContext;
}

/** Options of {@link runFleet}. */
export interface FleetOptions {
  /** The databases and schemas to migrate. At least one; names unique. */
  readonly members: readonly FleetMember[];
  /**
   * The member that goes first, alone: the others start only once it has run its steps
   * without failing, so a broken definition or data surprise stops at one member.
   * @default the first member
   */
  readonly canary?: string;
  /** How many members (after the canary) run at once. @default 4 */
  readonly concurrency?: number;
  /**
   * The last step to run. `verify` leaves contract to a later run, once the members'
   * stages reach `complete`.
   * @default 'verify'
   */
  readonly through?: FleetStep;
  /**
   * Where each member's stage comes from, for contract: the migration's stage flag,
   * evaluated with the member's context. Required when `through` is `contract`; a member
   * whose flag is not `complete` (or can't be read) waits, and says so.
   * @default none
   */
  readonly flags?: FlagSource;
  /** Options of each member's expand (the member's `stateSchema` replaces any given). @default {} */
  readonly expand?: Omit<ExpandOptions, 'stateSchema' | 'dryRun'>;
  /** Options of each member's backfill (the member's `stateSchema` and the fleet's worker id replace any given). @default {} */
  readonly backfill?: Omit<BackfillOptions, 'stateSchema' | 'workerId' | 'signal'>;
  /** Options of each member's verification (the member's `stateSchema` replaces any given). @default {} */
  readonly verify?: Omit<VerifyOptions, 'stateSchema'>;
  /** Options of each member's contract (its stage comes from `flags`). @default {} */
  readonly contract?: Omit<ContractOptions, 'stateSchema' | 'stage' | 'force' | 'dryRun'>;
  /**
   * This coordinator's name. The backfill's worker id on each member derives from it, so
   * a coordinator restarted under the same name takes its key ranges back at once, where
   * another waits for their lease to lapse. Never run two coordinators under one name.
   * @default `<hostname>:<pid>`
   */
  readonly coordinator?: string;
  /** Stops the run between steps (a backfill between batches); progress is kept. @default none */
  readonly signal?: AbortSignal;
  /** Called with a member's status whenever it changes. Exceptions are ignored. @default none */
  readonly onProgress?: (status: FleetMemberStatus) => void;
}

/** Options of {@link fleetStatus}: the members, and where their stages come from. */
export type FleetStatusOptions = Pick<FleetOptions, 'members' | 'canary' | 'concurrency' | 'flags'>;

/**
 * Where a member stands. `ready`: its next step may run; `running`: a step was started
 * and has not ended (after a coordinator crash it stays so until the next run);
 * `failed`: its next step failed, `reason` says why; `waiting`: contract waits for the
 * member's stage to reach `complete`; `skipped`: not started because the canary failed;
 * `contracted`: every step done.
 */
export type FleetMemberState = 'ready' | 'running' | 'failed' | 'waiting' | 'skipped' | 'contracted';

/** One member's place in the migration, read off its own database. */
export interface FleetMemberStatus {
  readonly member: string;
  /** Steps done, in order, as the member's catalog and state tables show them. */
  readonly completed: readonly FleetStep[];
  /** The step to run next; `undefined` once contracted. */
  readonly next: FleetStep | undefined;
  readonly state: FleetMemberState;
  /** Why it failed, waits or was skipped, or since when it runs; one line. */
  readonly reason: string | undefined;
  /** The member's stage from `flags`, when they were given and could be read. */
  readonly stage?: string;
  /** Rows the current backfill pass has done, and the estimate of all, when one started. */
  readonly backfill?: { readonly rowsDone: number; readonly totalEstimate: number; readonly done: boolean };
}

/** The whole fleet: every member's status, in the order the members were given. */
export interface FleetStatus {
  readonly migration: string;
  readonly canary: string;
  readonly members: readonly FleetMemberStatus[];
}

/** What {@link runFleet} did. */
export interface FleetReport extends FleetStatus {
  /** No member failed or was skipped. */
  readonly ok: boolean;
  /** The run was stopped by its `signal` before every member was through. */
  readonly stopped: boolean;
}
