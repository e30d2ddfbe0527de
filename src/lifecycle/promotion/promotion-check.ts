/**
 * What a change of a migration's flags needs before it is written: the schema the target
 * stage reads and writes, a finished backfill before reads are served new, and, for every
 * move that serves more new data, evidence from the fleet's published metrics: comparisons
 * recorded since the last stage change, or, out of rampdown (which compares nothing),
 * those of the last position that compared. One check for the API, the CLI and the
 * dashboard.
 */
import type { Queryable } from '../../kernel/index.js';
import { sideOperations } from '../../metrics/index.js';
import { type Migration, type Side, STAGE_BEHAVIOUR, STAGES, type Stage } from '../../model/index.js';
import { schemaState } from '../ddl/index.js';
import {
  backfillStatus,
  comparisonsSince,
  DEFAULT_STATE_SCHEMA,
  type FleetMigrationMetrics,
  lockMigration,
  readFleetTotals,
  stageMoves,
} from '../state/index.js';
import { describePosition, type FlagPosition, servesMoreNew } from './flag-position.js';
import { type PromotionGateOptions, type ResolvedGate, resolveGate } from './gate-options.js';

/** Options of {@link checkPromotion}. */
export interface PromotionCheckOptions {
  /**
   * Schema of flagshift's state tables, where the event log and the fleet metrics live.
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
  /**
   * What a move that serves more new data needs from the fleet's metrics.
   * @default {} (every default of {@link PromotionGateOptions})
   */
  readonly gate?: PromotionGateOptions;
  /**
   * Take the migration's lock (see `lockMigration`) before reading anything, for the
   * rest of the caller's transaction: contract holds it while it drops the old columns, so
   * a check made in the transaction that writes the flags sees them gone, or the flag
   * change is seen by contract. Turn it off for a check that only shows what a move would
   * meet and writes nothing.
   * @default true
   */
  readonly lock?: boolean;
}

/** What the fleet showed for a move that serves more new data. */
export interface PromotionEvidence {
  /**
   * When the position whose comparisons count began: the last stage change, or, moving
   * out of a stage that compares nothing past live (rampdown), the last position that
   * compared. `undefined`: no change was logged.
   */
  readonly since: Date | undefined;
  /** Comparisons recorded since then (by when they were recorded, not published), and how many mismatched. */
  readonly comparisons: number;
  readonly mismatches: number;
  /** The comparisons the gate asks for. */
  readonly minComparisons: number;
  /** New-side error rate over the fleet's processes; `undefined` until enough new-side operations. */
  readonly newErrorRate: number | undefined;
  /** New side's p99 over old side's; `undefined` until each side has enough measurements. */
  readonly latencyRatio: number | undefined;
  /** One line: `412 of 1000 comparisons since 14:02:07 UTC; 0 mismatches`. */
  readonly summary: string;
}

/** The verdict of {@link checkPromotion}. */
export interface PromotionCheck {
  readonly from: FlagPosition;
  readonly to: FlagPosition;
  /** Whether the move serves more new data, so the gate asked for evidence. */
  readonly gated: boolean;
  /** Why the move may not be made, one sentence each; empty when it may. */
  readonly problems: readonly string[];
  /** What the fleet showed, for a gated move. */
  readonly evidence: PromotionEvidence | undefined;
  /**
   * Leaving `complete` for `rampdown` while the sync triggers run: rampdown reads new only
   * and the triggers filled old from new, so nothing stale is served.
   */
  readonly safeLeavingComplete: boolean;
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

function clock(at: Date): string {
  return `${at.toISOString().slice(11, 19)} UTC`;
}

/** The schema and backfill problems of moving to `to`: what would break or serve wrong values. */
async function schemaProblems(
  db: Queryable,
  migration: Migration,
  from: FlagPosition,
  to: FlagPosition,
  stateSchema: string,
): Promise<{ problems: string[]; safeLeavingComplete: boolean }> {
  const schema = await schemaState(db, migration);
  const uses = (stage: Stage) => new Set<Side>([...STAGE_BEHAVIOUR[stage].reads, ...STAGE_BEHAVIOUR[stage].writes]);
  const problems: string[] = [];
  let safeLeavingComplete = false;
  const { missingOld, missingNew } = schema;
  if (schema.tableExists && missingNew.length === 0 && missingOld.length > 0 && uses(to.stage).has('old')) {
    const many = missingOld.length > 1;
    problems.push(
      `the old column${many ? 's' : ''} ${missingOld.join(', ')} ${many ? 'are' : 'is'} gone (contract dropped ${many ? 'them' : 'it'}), and stage ${to.stage} reads or writes ${many ? 'them' : 'it'}: every application read or write would fail; a contracted migration stays at complete`,
    );
  } else if (schema.tableExists && missingNew.length > 0 && uses(to.stage).has('new')) {
    const many = missingNew.length > 1;
    problems.push(
      `the new column${many ? 's' : ''} ${missingNew.join(', ')} ${many ? 'do' : 'does'} not exist yet, and stage ${to.stage} writes ${many ? 'them' : 'it'}: every application write would fail; run flagshift expand ${migration.name} first`,
    );
  } else if (from.stage === 'complete' && to.stage !== 'complete') {
    if (to.stage === 'rampdown' && schema.syncTriggers && missingOld.length === 0) {
      safeLeavingComplete = true;
    } else {
      problems.push(
        schema.syncTriggers
          ? `stage ${to.stage} reads the old columns, which since complete only the sync triggers have filled; step back to rampdown first (it reads new only)`
          : 'writes since complete went to the new columns only and no sync trigger fills old from new, so the old columns may hold stale values',
      );
    }
  }
  const forwardIntoNew =
    STAGES.indexOf(to.stage) > STAGES.indexOf(from.stage) && STAGE_BEHAVIOUR[to.stage].reads.includes('new');
  if ((forwardIntoNew || servesMoreNew(from, to)) && schema.tableExists && missingOld.length === 0) {
    const backfill = await backfillStatus(db, migration.name, stateSchema);
    if (backfill?.status !== 'done') {
      const where =
        backfill === undefined
          ? 'has not started'
          : `has not finished (pass ${backfill.pass}: ${backfill.rowsDone}/${backfill.totalEstimate} rows)`;
      problems.push(
        `the backfill ${where}, so rows no dual write touched have no new value and stage ${to.stage} reads new; run flagshift backfill ${migration.name} first`,
      );
    }
  }
  return { problems, safeLeavingComplete };
}

/** New-side failures over new-side operations (reads served new, comparisons, writes to new). */
function newErrorRate(fleet: FleetMigrationMetrics | undefined, gate: ResolvedGate): number | undefined {
  if (fleet === undefined) return undefined;
  const failed = fleet.errors.bySide.new;
  const operations = sideOperations(fleet, 'new');
  return operations >= gate.minNewOperations && operations > 0 ? failed / operations : undefined;
}

function latencyRatio(fleet: FleetMigrationMetrics | undefined, gate: ResolvedGate): number | undefined {
  if (fleet === undefined) return undefined;
  const { old, new: next } = fleet.latency;
  if (old.window < gate.minLatencySamples || next.window < gate.minLatencySamples || old.p99 <= 0) return undefined;
  return next.p99 / old.p99;
}

/**
 * Where the comparisons that may promote a move out of `from` are counted from. In a
 * stage that compares (shadow, live): those recorded since the position began (its last
 * stage event). Past the comparing stages (rampdown), where nothing compares: those of
 * the last position that did, which the move into rampdown already rested on. Before them
 * (off, dualwrite): since the last change, which is nothing until shadow. A publish
 * window that began before the counted position is left out when a position that compared
 * came between (it may hold that position's comparisons); when none did since the window
 * began, it can only hold comparisons made since.
 */
interface EvidenceWindow {
  /** When the counted position began; `undefined` without a logged change. */
  readonly since: Date | undefined;
  /** Count comparisons recorded at or after this; `undefined`: all retained; `null`: none count. */
  readonly countFrom: Date | undefined | null;
  /** The counted position, for a source stage that doesn't compare; `undefined` otherwise. */
  readonly position: string | undefined;
}

async function evidenceWindow(
  db: Queryable,
  migration: Migration,
  from: FlagPosition,
  stateSchema: string,
): Promise<EvidenceWindow> {
  const moves = await stageMoves(db, migration.name, stateSchema);
  // A logged stage that is unset is the migration's default; one that is not a stage counts as comparing.
  const compares = (stage: string | null) => {
    const resolved = stage ?? migration.defaultStage;
    return (STAGES as readonly string[]).includes(resolved) ? STAGE_BEHAVIOUR[resolved as Stage].compares : true;
  };
  const pastComparing = !STAGE_BEHAVIOUR[from.stage].compares && STAGES.indexOf(from.stage) > STAGES.indexOf('live');
  const index = pastComparing ? moves.findIndex((move) => compares(move.to)) : 0;
  const entered = moves[index];
  if (entered === undefined) {
    // No change logged: everything published counts; past the comparing stages, none compared.
    return pastComparing && moves.length > 0
      ? { since: undefined, countFrom: null, position: undefined }
      : { since: undefined, countFrom: undefined, position: undefined };
  }
  // From when something last stopped comparing before it: windows that began after that
  // hold no comparison of an earlier position.
  const countFrom = moves.slice(index).find((move) => compares(move.from))?.at;
  const position =
    entered.to === 'live' && entered.percent !== null
      ? `live ${entered.percent}%`
      : (entered.to ?? migration.defaultStage);
  return { since: entered.at, countFrom, position: pastComparing ? position : undefined };
}

async function readEvidence(
  db: Queryable,
  migration: Migration,
  from: FlagPosition,
  gate: ResolvedGate,
  stateSchema: string,
): Promise<{ evidence: PromotionEvidence; problems: string[] }> {
  const window = await evidenceWindow(db, migration, from, stateSchema);
  const { since } = window;
  const { comparisons, mismatches } =
    window.countFrom === null
      ? { comparisons: 0, mismatches: 0 }
      : await comparisonsSince(db, stateSchema, migration.name, window.countFrom);
  const fleet = (await readFleetTotals(db, stateSchema))[migration.name];
  const errorRate = newErrorRate(fleet, gate);
  const ratio = latencyRatio(fleet, gate);
  const counted =
    window.countFrom === null
      ? 'in a stage that compares (none was logged)'
      : window.position !== undefined
        ? `in ${window.position}${since === undefined ? '' : ` from ${clock(since)}`}, the last position that compared`
        : since === undefined
          ? 'published'
          : `since ${clock(since)}`;
  const summary = `${comparisons} of ${gate.minComparisons} ${plural(gate.minComparisons, 'comparison', 'comparisons')} ${counted}; ${mismatches} ${plural(mismatches, 'mismatch', 'mismatches')}`;
  const problems: string[] = [];
  if (comparisons < gate.minComparisons) {
    const hint = STAGE_BEHAVIOUR[from.stage].compares
      ? "processes publish them with createMetricsPublisher, and a publish counts from that process's previous one, so the first after a change counts only if nothing compared before it; keep the migration in a comparing stage until they do"
      : STAGES.indexOf(from.stage) < STAGES.indexOf('shadow')
        ? `stage ${from.stage} compares nothing: move to shadow first, where processes compare and publish`
        : `stage ${from.stage} compares nothing: step back to live to gather them`;
    problems.push(`not enough evidence yet: ${summary} (${hint})`);
  }
  const rate = comparisons === 0 ? 0 : mismatches / comparisons;
  if (mismatches > 0 && rate > gate.maxMismatchRate) {
    problems.push(
      `${summary}: a mismatch rate of ${formatShare(rate)} is above the gate's ${formatShare(gate.maxMismatchRate)}`,
    );
  }
  if (errorRate !== undefined && errorRate > gate.maxNewErrorRate) {
    problems.push(
      `the new side's error rate is ${formatShare(errorRate)}, above the gate's ${formatShare(gate.maxNewErrorRate)}`,
    );
  }
  if (ratio !== undefined && ratio > gate.maxLatencyRatio) {
    problems.push(
      `the new side's p99 latency is ${ratio.toFixed(2)}x the old side's, above the gate's ${gate.maxLatencyRatio}x`,
    );
  }
  return {
    evidence: {
      since,
      comparisons,
      mismatches,
      minComparisons: gate.minComparisons,
      newErrorRate: errorRate,
      latencyRatio: ratio,
      summary,
    },
    problems,
  };
}

function formatShare(share: number): string {
  return `${Number((share * 100).toPrecision(3))}%`;
}

/**
 * Checks a change of `migration`'s flags from `from` to `to` (what processes use now and
 * would use after), reading the schema, the backfill's state, the event log and the
 * fleet's published metrics. Run it in the transaction that writes the flags, so what it
 * read still holds when they change: it takes the migration's lock there (unless `lock`
 * is false), which contract takes too before each of its steps. Moving back is never gated by evidence; it is
 * refused only where it would break the application (a contracted column) or serve stale
 * values (leaving `complete`).
 *
 * @throws {ConfigurationError} when an option is invalid.
 * @example
 * ```ts
 * import { checkPromotion } from 'flagshift/lifecycle';
 *
 * const check = await checkPromotion(driver, usernameRename, { stage: 'shadow', percent: 0 }, { stage: 'live', percent: 10 });
 * if (check.problems.length > 0) console.log(check.problems.join('\n'));
 * else console.log(`ready: ${check.evidence?.summary}`);
 * ```
 */
export async function checkPromotion(
  db: Queryable,
  migration: Migration,
  from: FlagPosition,
  to: FlagPosition,
  options: PromotionCheckOptions = {},
): Promise<PromotionCheck> {
  const gate = resolveGate(options.gate);
  const stateSchema = options.stateSchema ?? DEFAULT_STATE_SCHEMA;
  if (options.lock !== false) await lockMigration(db, migration.name, stateSchema);
  const { problems, safeLeavingComplete } = await schemaProblems(db, migration, from, to, stateSchema);
  const gated = servesMoreNew(from, to);
  let evidence: PromotionEvidence | undefined;
  if (gated) {
    const read = await readEvidence(db, migration, from, gate, stateSchema);
    evidence = read.evidence;
    problems.push(...read.problems);
  }
  return { from, to, gated, problems, evidence, safeLeavingComplete };
}

/** `moving migration "x" from shadow to live 10%`: the subject of a refusal. */
export function describeMove(migration: { readonly name: string }, from: FlagPosition, to: FlagPosition): string {
  return `moving migration "${migration.name}" from ${describePosition(from)} to ${describePosition(to)}`;
}
