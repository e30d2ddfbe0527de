/**
 * Turns flag decisions into routes: for one migration and one entity, which sides a read
 * fetches, which it serves, which a write sets, and whether the read compares, as the
 * stage contract (docs/STAGES.md) prescribes.
 */
import { effectiveStage, type Migration, type Side, STAGE_BEHAVIOUR, STAGES, type Stage } from '../model/index.js';
import { isInReadPercentage } from './bucketing.js';
import type { FlagContext } from './flag-source.js';
import type { ReadGuard } from './read-guard.js';
import type { FlagDecision, MigrationFlags, StageResolver } from './stage-resolver.js';

/** Where one entity's operation goes for one migration. Shared, frozen objects: never mutate. */
export interface Route {
  /** The stage flag's value. */
  readonly stage: Stage;
  /** The stage the entity behaves as: `live` outside the read percentage behaves as `shadow`. */
  readonly effective: Stage;
  readonly serves: Side;
  readonly readsOld: boolean;
  readonly readsNew: boolean;
  readonly writesOld: boolean;
  readonly writesNew: boolean;
  /** Whether reads compare (before sampling). */
  readonly compares: boolean;
}

function makeRoute(stage: Stage, effective: Stage): Route {
  const behaviour = STAGE_BEHAVIOUR[effective];
  return Object.freeze({
    stage,
    effective,
    serves: behaviour.serves,
    readsOld: behaviour.reads.includes('old'),
    readsNew: behaviour.reads.includes('new'),
    writesOld: behaviour.writes.includes('old'),
    writesNew: behaviour.writes.includes('new'),
    compares: behaviour.compares,
  });
}

const ROUTES: Readonly<Record<Stage, Route>> = Object.freeze(
  Object.fromEntries(STAGES.map((stage) => [stage, makeRoute(stage, stage)])) as Record<Stage, Route>,
);
/** `live` for an entity outside the read percentage. */
const LIVE_OUTSIDE_RAMP: Route = makeRoute('live', effectiveStage('live', false));

/**
 * Per stage, its route held back from the new side by a read guard: served old and still
 * compared, as in `shadow`, while the stage stays the flag's (for errors naming it).
 */
const HELD_ROUTES: Readonly<Record<Stage, Route>> = Object.freeze(
  Object.fromEntries(STAGES.map((stage) => [stage, makeRoute(stage, 'shadow')])) as Record<Stage, Route>,
);

/** `route` held back from serving the new side (a read guard tripped). */
export function heldRoute(route: Route): Route {
  return HELD_ROUTES[route.stage];
}

/**
 * `route`, held on the old side while `guard` says `migration`'s new side must not serve
 * reads (a guardrail tripped). `complete` is never held: its old columns may be gone. A
 * guard that throws holds nothing back.
 */
export function guardedRoute(route: Route, guard: ReadGuard | undefined, migration: string): Route {
  if (route.serves !== 'new' || route.stage === 'complete' || guard === undefined) return route;
  let allowed = true;
  try {
    allowed = guard.allowsNewReads(migration);
  } catch {
    // A broken guard must not fail reads.
  }
  return allowed ? route : heldRoute(route);
}

/** The route of `stage` for an entity inside (`inRamp`) or outside the read percentage. */
export function routeFor(stage: Stage, inRamp: boolean): Route {
  return stage === 'live' && !inRamp ? LIVE_OUTSIDE_RAMP : ROUTES[stage];
}

/** How many segments' flags a router keeps built. */
const MAX_SEGMENTS = 1024;

/** Whether `context` has attributes besides its targeting key. */
function hasAttributes(context: FlagContext | undefined): boolean {
  if (context === undefined) return false;
  for (const key in context) if (key !== 'targetingKey') return true;
  return false;
}

/**
 * The segment a context names: its attributes other than `targetingKey`, sorted by name,
 * as JSON; '' when it has none. Contexts with the same attributes share decisions.
 */
export function segmentOf(context: FlagContext): string {
  const names = Object.keys(context)
    .filter((name) => name !== 'targetingKey' && context[name] !== undefined)
    .sort();
  if (names.length === 0) return '';
  const entries = names.map((name) => [name, context[name]]);
  try {
    return JSON.stringify(entries, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
  } catch {
    // A value JSON can't hold (a cycle) must not fail the data path: its text stands in.
    return entries.map(([name, value]) => `${name}=${String(value)}`).join('\u0000');
  }
}

/** Flag keys and defaults of a migration, in the shape the resolver takes, for contexts of `segment`. */
export function migrationFlags(migration: Migration, segment = ''): MigrationFlags {
  return {
    migration: migration.name,
    stageFlagKey: migration.stageFlagKey,
    percentFlagKey: migration.percentFlagKey,
    defaultStage: migration.defaultStage,
    defaultPercent: migration.defaultPercent,
    evaluation: migration.evaluation,
    ...(segment === '' ? {} : { segment }),
  };
}

/** Decisions pinned by a transaction: one per migration, taken at first use. */
export type PinnedDecisions = Map<string, FlagDecision>;

/**
 * Routes entities of one migration. `baseContext` is the repository's evaluation context;
 * `callContext` the operation's or transaction's (its `targetingKey`, when set, replaces
 * the entity key for bucketing).
 */
export class MigrationRouter {
  readonly migration: Migration;
  /** The flags for the base context's segment. */
  private readonly flags: MigrationFlags;
  /** The flags for segments that call contexts name, built once each. */
  private readonly segmentFlags = new Map<string, MigrationFlags>();
  private readonly resolver: StageResolver;
  private readonly baseContext: FlagContext;

  constructor(migration: Migration, resolver: StageResolver, baseContext: FlagContext) {
    this.migration = migration;
    this.flags = migrationFlags(migration, segmentOf(baseContext));
    this.resolver = resolver;
    this.baseContext = baseContext;
  }

  /** The flag decision for an entity (or, with `entityKey` undefined, for the context alone). */
  decide(
    entityKey: string | undefined,
    callContext: FlagContext | undefined,
    pinned?: PinnedDecisions,
  ): FlagDecision | Promise<FlagDecision> {
    if (pinned !== undefined) return this.decidePinned(entityKey, callContext, pinned);
    return this.evaluate(entityKey, callContext);
  }

  // Apart from decide(), so that an unpinned call allocates no scope for the closure here.
  private decidePinned(
    entityKey: string | undefined,
    callContext: FlagContext | undefined,
    pinned: PinnedDecisions,
  ): FlagDecision | Promise<FlagDecision> {
    const decision = pinned.get(this.migration.name);
    if (decision !== undefined) return decision;
    const pending = this.evaluate(entityKey, callContext);
    if (pending instanceof Promise) {
      return pending.then((value) => {
        const first = pinned.get(this.migration.name);
        if (first !== undefined) return first;
        pinned.set(this.migration.name, value);
        return value;
      });
    }
    pinned.set(this.migration.name, pending);
    return pending;
  }

  private evaluate(
    entityKey: string | undefined,
    callContext: FlagContext | undefined,
  ): FlagDecision | Promise<FlagDecision> {
    const contextKey = callContext?.targetingKey;
    if (this.migration.evaluation === 'per-entity') {
      const targetingKey = contextKey ?? entityKey ?? '';
      const context = { ...this.baseContext, ...callContext, targetingKey };
      return this.resolver.resolve(this.flagsFor(callContext, context), context, targetingKey);
    }
    if (callContext === undefined) return this.resolver.resolve(this.flags, this.baseContext, '');
    const context = { ...this.baseContext, ...callContext };
    return this.resolver.resolve(this.flagsFor(callContext, context), context, contextKey ?? '');
  }

  /** The flags for `context` (the base context merged with `callContext`): per segment when the call names attributes of its own. */
  private flagsFor(callContext: FlagContext | undefined, context: FlagContext): MigrationFlags {
    if (!hasAttributes(callContext)) return this.flags;
    const segment = segmentOf(context);
    let flags = this.segmentFlags.get(segment);
    if (flags === undefined) {
      // Bounded: an attribute that differs per request (a request id) must not grow it for good.
      if (this.segmentFlags.size >= MAX_SEGMENTS) this.segmentFlags.clear();
      flags = migrationFlags(this.migration, segment);
      this.segmentFlags.set(segment, flags);
    }
    return flags;
  }

  /** The route of one entity under `decision`. */
  route(decision: FlagDecision, entityKey: string | undefined, callContext: FlagContext | undefined): Route {
    if (decision.stage !== 'live') return ROUTES[decision.stage];
    const bucketKey = callContext?.targetingKey ?? entityKey ?? '';
    return routeFor('live', isInReadPercentage(decision.percent, this.migration.stageFlagKey, bucketKey));
  }
}
