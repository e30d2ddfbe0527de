/**
 * The SQL router: for each statement an application's ORM sends, the routing of every
 * migration it touches (the same stage resolver, bucketing, read guard and transaction
 * pinning as repositories), the statement rewritten for it (cached per text and routing),
 * and, once the database answered, the comparison of both sides of each row, the hidden
 * columns stripped, and the metric events. No I/O: the adapter runs the statements.
 */
import { z } from 'zod';
import {
  createStageResolver,
  type FlagContext,
  type FlagDecision,
  type FlagSource,
  guardedRoute,
  MigrationRouter,
  type PinnedDecisions,
  type ReadGuard,
  type Route,
  type StageResolver,
} from '../flags/index.js';
import { ConfigurationError, parseOptions, ValidationError } from '../kernel/index.js';
import type { MetricEvent, MetricsSink, Operation } from '../metrics/index.js';
import type { Migration, Side } from '../model/index.js';
import { blamedSide, keyText, reportMismatch } from '../repository/index.js';
import { diffEntities, redactValue } from '../shadow/index.js';
import { type Analysis, analyze, type KeySource, type RoutedStatement } from './analyze.js';
import { movedResult } from './moved-result.js';
import type { SqlParser } from './parser.js';
import { PlanCache } from './plan-cache.js';
import { type Rewritten, rewriteStatement } from './rewrite.js';
import { lostInPrinting } from './round-trip.js';
import { refuser } from './scope.js';
import type { FormCache } from './sql-forms.js';
import { type Mode, migratedTables } from './tables.js';

/** Options of the SQL router (`routePool`, `routePGlite`). Validated when the router is created. */
export interface SqlRouterOptions {
  /** The migrations whose tables the application's statements are routed for. Same-row mappings and `moveColumn` (see docs/sql.md for what is refused). */
  readonly migrations: readonly Migration[];
  /** Where stage and read-percentage flags come from. Required unless `resolver` is given. */
  readonly flags?: FlagSource;
  /** A resolver shared with repositories (one flag cache for all). @default one over `flags` */
  readonly resolver?: StageResolver;
  /** Receives every metric event, as repositories emit them. @default none */
  readonly metrics?: MetricsSink;
  /** Holds reads on the old side while it says so (the guardrails). @default none */
  readonly readGuard?: ReadGuard;
  /** Evaluation context merged into every flag evaluation. @default {} */
  readonly context?: FlagContext;
  /** How many statement texts keep their parse and rewrites. @default 1000 */
  readonly planCacheSize?: number;
}

const optionsSchema = z.strictObject({
  migrations: z
    .array(z.custom<Migration>((value) => (value as { kind?: unknown } | null)?.kind === 'migration'))
    .min(1),
  flags: z.custom<FlagSource>((value) => typeof (value as FlagSource | null)?.resolve === 'function').optional(),
  resolver: z
    .custom<StageResolver>((value) => typeof (value as StageResolver | null)?.resolve === 'function')
    .optional(),
  metrics: z.custom<MetricsSink>((value) => typeof (value as MetricsSink | null)?.record === 'function').optional(),
  readGuard: z
    .custom<ReadGuard>((value) => typeof (value as ReadGuard | null)?.allowsNewReads === 'function')
    .optional(),
  context: z.record(z.string(), z.unknown()).optional(),
  planCacheSize: z.number().int().min(1).optional(),
});

/** A connection's transaction state: decisions pinned from BEGIN to COMMIT or ROLLBACK. */
export interface SqlSession {
  pinned: PinnedDecisions | undefined;
}

/** A result as drivers return it: rows as objects, or as arrays with `rowMode: 'array'`. */
export interface SqlResult {
  rows: unknown[];
  fields?: unknown[];
  rowCount?: number | null;
}

/** One statement, routed: the text to run and what to do with its result. */
export interface RoutedQuery {
  readonly sql: string;
  /** The text to run instead when `sql` fails and only its comparison columns can be to blame. */
  readonly fallback: string | undefined;
  /** Run `sql` under a savepoint (inside a transaction), so that its failure leaves the transaction usable for `fallback`. */
  readonly underSavepoint: boolean;
  /**
   * Whether {@link finish} returns the result untouched and {@link failed} does nothing (no
   * comparison, no metrics sink): the adapter can then hand back the driver's own promise.
   */
  readonly passive: boolean;
  /**
   * Compares, strips hidden columns and reports; returns the result the caller gets.
   * `fellBack` when `fallback` ran instead, after `sql` failed with `error`.
   */
  finish<R extends SqlResult>(result: R, fellBack: boolean, error?: unknown): R;
  /** Reports a statement that failed (and had no fallback, or whose fallback failed too). */
  failed(error: unknown): void;
}

/** Counters of the router, for benchmarks and dashboards. */
export interface SqlRouterStats {
  readonly planHits: number;
  readonly planMisses: number;
  readonly passedThrough: number;
  /** Reads that would have compared but couldn't in one statement (grouped rows, expressions only...). */
  readonly comparisonsSkipped: number;
}

/** Routes statements; see {@link createSqlRouter}. */
export interface SqlRouter {
  /** The routed form of `sql`, or `undefined` to run it as it is. Throws for a statement it can't rewrite safely. */
  route(
    sql: string,
    values: readonly unknown[] | undefined,
    session: SqlSession | undefined,
    context: FlagContext | undefined,
  ): RoutedQuery | undefined | Promise<RoutedQuery | undefined>;
  stats(): SqlRouterStats;
  close(): void;
}

interface Plan extends RoutedStatement {
  /** The router of each migration, in the order of `migrations`. */
  readonly routers: readonly MigrationRouter[];
  readonly variants: Map<string, Rewritten>;
  /**
   * The same rewrites, by route object, for a statement of one migration, without and with
   * comparison: routes are shared frozen objects, so a warm statement finds its rewrite
   * without building the variant's key.
   */
  readonly byRoute: readonly [Map<Route, Rewritten>, Map<Route, Rewritten>];
  /**
   * The passive query of each rewrite: one that neither compares nor reports carries
   * nothing of its call, so every call of the variant shares it.
   */
  readonly passive: Map<Rewritten, RoutedQuery>;
  /**
   * Whether the statement prints back as written (checked once, when a rewrite first
   * changes its text): `null` when it does, else the construct the printer loses.
   */
  lost?: string | null;
}

/**
 * Creates the router. `loadedParser` returns PostgreSQL's parser, which the adapter loads
 * (asynchronously) before the first statement; the options are checked now.
 */
export function createSqlRouter(loadedParser: () => SqlParser, input: SqlRouterOptions): SqlRouter {
  const options = parseOptions('routed SQL', optionsSchema, input) as SqlRouterOptions;
  const tables = migratedTables(options.migrations);
  let resolver = options.resolver;
  const ownsResolver = resolver === undefined;
  if (resolver === undefined) {
    if (options.flags === undefined) {
      throw new ConfigurationError('routed SQL: options.flags is required unless options.resolver is given');
    }
    resolver = createStageResolver({ flags: options.flags, ...(options.metrics ? { metrics: options.metrics } : {}) });
  }
  const baseContext = Object.freeze({ ...(options.context ?? {}) });
  const routers = new Map(options.migrations.map((m) => [m.name, new MigrationRouter(m, resolver!, baseContext)]));
  const counters = new Map(options.migrations.map((m) => [m.name, 0]));
  const plans = new PlanCache<Plan | Analysis>(options.planCacheSize ?? 1000);
  const forms: FormCache = new Map();
  const stats = { planHits: 0, planMisses: 0, passedThrough: 0, comparisonsSkipped: 0 };
  const metrics = options.metrics;
  const emit = (event: MetricEvent) => {
    try {
      metrics?.record(event);
    } catch {
      // A broken sink must never fail or slow a query.
    }
  };

  const planOf = (sql: string): Plan | Analysis => {
    let plan = plans.get(sql);
    if (plan !== undefined) {
      stats.planHits++;
      return plan;
    }
    stats.planMisses++;
    let stmts: readonly { stmt: Record<string, unknown> }[];
    try {
      stmts = loadedParser().parse(sql).stmts ?? [];
    } catch {
      // Not PostgreSQL's grammar: the database reports it, with its own message.
      plan = { kind: 'pass' };
      plans.set(sql, plan);
      return plan;
    }
    const analysis = analyze(stmts, tables, refuser(sql));
    plan =
      analysis.kind === 'routed'
        ? {
            ...analysis,
            routers: analysis.migrations.map((migration) => routers.get(migration.name)!),
            variants: new Map(),
            byRoute: [new Map(), new Map()],
            passive: new Map(),
          }
        : analysis;
    plans.set(sql, plan);
    return plan;
  };

  /** Refuses a statement whose tree doesn't survive printing; checked once per plan. */
  const printable = (plan: Plan, sql: string): void => {
    if (plan.lost === undefined) plan.lost = lostInPrinting(loadedParser(), plan.statement) ?? null;
    if (plan.lost !== null) refuser(sql)(plan.lost);
  };

  const sample = (migration: Migration): boolean => {
    const n = migration.sampleOneIn;
    if (n === 1) return true;
    const next = (counters.get(migration.name)! + 1) % n;
    counters.set(migration.name, next);
    return next === 0;
  };

  /** The rewrite of `plan` for `routes`, with or without comparison; made once per variant. */
  const variant = (plan: Plan, sql: string, routes: readonly Route[], withCompare: boolean): Rewritten => {
    const single = routes.length === 1 ? plan.byRoute[withCompare ? 1 : 0] : undefined;
    const known = single?.get(routes[0]!);
    if (known !== undefined) return known;
    // The variant's key: what each migration serves, writes and compares.
    const key = routes
      .map((route) => `${route.serves}${+route.writesOld}${+route.writesNew}${+(withCompare && route.compares)}`)
      .join(';');
    let rewritten = plan.variants.get(key);
    if (rewritten === undefined) {
      const modes = new Map<string, Mode>(
        plan.migrations.map((migration, index) => {
          const route = routes[index]!;
          const mode = { serves: route.serves, writesOld: route.writesOld, writesNew: route.writesNew };
          return [migration.name, { ...mode, compare: withCompare && route.compares }];
        }),
      );
      const refuse = refuser(sql);
      const statement = structuredClone(plan.statement);
      try {
        rewritten = rewriteStatement(statement, sql, modes, tables, loadedParser(), forms, refuse, withCompare);
      } catch (error) {
        // A construct the printer can't print fails the rewrite's own printing: name it.
        if (!(error instanceof ValidationError)) printable(plan, sql);
        throw error;
      }
      // The rewritten text is printed from the tree: run it only if the original survives printing.
      if (rewritten.sql !== sql) printable(plan, sql);
      plan.variants.set(key, rewritten);
    }
    single?.set(routes[0]!, rewritten);
    return rewritten;
  };

  const routedQuery = (
    plan: Plan,
    sql: string,
    routes: readonly Route[],
    compare: boolean,
    operation: Operation,
    inTransaction: boolean,
  ): RoutedQuery => {
    const rewritten = variant(plan, sql, routes, compare);
    if (rewritten.skipped) stats.comparisonsSkipped++;
    const fallback = rewritten.compared.length > 0 ? variant(plan, sql, routes, false).sql : undefined;
    const passive = fallback === undefined && metrics === undefined && rewritten.moved === undefined;
    if (passive) {
      let shared = plan.passive.get(rewritten);
      if (shared === undefined) {
        shared = Object.freeze({
          sql: rewritten.sql,
          fallback,
          passive,
          underSavepoint: false,
          finish: (result) => result,
          failed: () => undefined,
        } satisfies RoutedQuery);
        plan.passive.set(rewritten, shared);
      }
      return shared;
    }
    const started = metrics !== undefined ? performance.now() : 0;
    return {
      sql: rewritten.sql,
      fallback,
      passive,
      // Inside a transaction a failed statement aborts the caller's transaction: a statement
      // with comparison columns runs under a savepoint there, as a repository's read does.
      underSavepoint: inTransaction && fallback !== undefined,
      finish: (result, fellBack, error) => {
        if (rewritten.moved !== undefined) movedResult(result, rewritten.moved);
        if (fellBack) {
          // The served side ran without the comparison columns: whether they or a transient
          // failure broke the first attempt, the error's class tells (as for repositories).
          plan.migrations.forEach((migration, index) => {
            const route = routes[index]!;
            if (!route.compares) return;
            emitError(migration, route, blamedSide(error, route.serves, otherSide(route)), operation, error);
          });
        } else if (rewritten.compared.length > 0) {
          compareRows(plan, routes, rewritten, result, operation);
        }
        if (metrics !== undefined) {
          report(plan, routes, operation, result, started, !fellBack && rewritten.compared.length > 0);
        }
        return result;
      },
      failed: (error) => {
        plan.migrations.forEach((migration, index) => {
          const route = routes[index]!;
          if (plan.read) emitError(migration, route, route.serves, operation, error);
          else for (const side of writtenSides(route)) emitError(migration, route, side, operation, error);
        });
      },
    };
  };

  const emitError = (migration: Migration, route: Route, side: Side, operation: Operation, error: unknown) => {
    const code = (error as { code?: unknown } | null)?.code;
    emit({
      type: 'error',
      migration: migration.name,
      stage: route.stage,
      route: route.effective,
      side,
      operation,
      code: typeof code === 'string' ? code : 'unknown',
    });
  };

  const compareRows = (
    plan: Plan,
    routes: readonly Route[],
    rewritten: Rewritten,
    result: SqlResult,
    operation: Operation,
  ): void => {
    const arrays = result.rows.length > 0 && Array.isArray(result.rows[0]);
    const position = new Map(rewritten.hidden.map((name, index) => [name, rewritten.outputs + index]));
    for (const row of result.rows) {
      const valueAt = (name: string, index: number): unknown =>
        arrays ? (row as unknown[])[index] : (row as Record<string, unknown>)[name];
      const groups = new Map<
        string,
        {
          migration: Migration;
          keys: readonly string[];
          old: Record<string, unknown>;
          new: Record<string, unknown>;
          fields: string[];
        }
      >();
      for (const compared of rewritten.compared) {
        const migration = compared.column.migration;
        const index = plan.migrations.indexOf(migration);
        const route = routes[index]!;
        const id = `${index}|${compared.keys.join(',')}`;
        let group = groups.get(id);
        if (group === undefined) {
          group = { migration, keys: compared.keys, old: {}, new: {}, fields: [] };
          groups.set(id, group);
        }
        const servedValue = valueAt(compared.name, compared.index);
        const otherValue = valueAt(compared.hidden, position.get(compared.hidden)!);
        group.fields.push(compared.column.field);
        group[route.serves][compared.column.field] = servedValue;
        group[route.serves === 'old' ? 'new' : 'old'][compared.column.field] = otherValue;
      }
      for (const group of groups.values()) {
        const route = routes[plan.migrations.indexOf(group.migration)]!;
        const { migration } = group;
        let diffs: ReturnType<typeof diffEntities>;
        try {
          diffs = diffEntities(group.fields, group.old, group.new, migration.compare, migration.rawValues);
        } catch (error) {
          emitError(migration, route, otherSide(route), operation, error);
          continue;
        }
        emit({
          type: 'comparison',
          migration: migration.name,
          stage: route.stage,
          route: route.effective,
          matched: diffs.length === 0,
        });
        if (diffs.length === 0) continue;
        const targeting = group.keys.map((key) => keyText(valueAt(key, position.get(key)!))).join(':');
        const shown = migration.rawValues ? targeting : redactValue(targeting);
        // As a repository reports it: the sample's (redacted) key is the targeting key.
        reportMismatch(emit, options.flags, {
          migration: migration.name,
          route,
          operation,
          key: shown,
          diffs,
          context: { targetingKey: String(shown) },
        });
      }
    }
    strip(result, rewritten, arrays);
  };

  const report = (
    plan: Plan,
    routes: readonly Route[],
    operation: Operation,
    result: SqlResult,
    started: number,
    compared: boolean,
  ) => {
    const milliseconds = performance.now() - started;
    plan.migrations.forEach((migration, index) => {
      const route = routes[index]!;
      if (plan.read) {
        emit({
          type: 'read',
          migration: migration.name,
          stage: route.stage,
          route: route.effective,
          served: route.serves,
          operation,
          count: result.rows.length,
        });
        emit({
          type: 'latency',
          migration: migration.name,
          side: compared && route.compares ? 'both' : route.serves,
          operation,
          milliseconds,
        });
        return;
      }
      const sides = writtenSides(route);
      emit({
        type: 'write',
        migration: migration.name,
        stage: route.stage,
        route: route.effective,
        sides,
        operation,
        count: result.rowCount ?? result.rows.length,
      });
      emit({
        type: 'latency',
        migration: migration.name,
        side: sides.length === 2 ? 'both' : sides[0]!,
        operation,
        milliseconds,
      });
    });
  };

  const decided = (
    plan: Plan,
    sql: string,
    session: SqlSession | undefined,
    context: FlagContext | undefined,
    decisions: readonly FlagDecision[],
    entityKeys: readonly (string | undefined)[],
  ): RoutedQuery => {
    let compare = plan.read;
    const routes = plan.migrations.map((migration, index) => {
      let route = plan.routers[index]!.route(decisions[index]!, entityKeys[index], context);
      route = guardedRoute(route, options.readGuard, migration.name);
      if (route.compares && !sample(migration)) compare = false;
      return route;
    });
    const operation: Operation = plan.read && plan.keys.size > 0 ? 'get' : plan.operation;
    return routedQuery(plan, sql, routes, compare, operation, session?.pinned !== undefined);
  };

  return {
    route(sql, values, session, context) {
      const plan = planOf(sql);
      if (plan.kind !== 'routed') {
        if (plan.kind === 'begin' && session !== undefined) session.pinned = new Map();
        if (plan.kind === 'end' && session !== undefined) session.pinned = undefined;
        stats.passedThrough++;
        return undefined;
      }
      const routed = plan as Plan;
      const { migrations } = routed;
      const entityKeys: (string | undefined)[] = [];
      const decisions: (FlagDecision | Promise<FlagDecision>)[] = [];
      let pending = false;
      for (let index = 0; index < migrations.length; index++) {
        const sources = routed.keys.get(migrations[index]!.name);
        const entityKey =
          sources === undefined
            ? undefined
            : sources.length === 1
              ? sourceText(sources[0]!, values)
              : sources.map((source) => sourceText(source, values)).join(':');
        const decision = routed.routers[index]!.decide(entityKey, context, session?.pinned);
        if (decision instanceof Promise) pending = true;
        entityKeys.push(entityKey);
        decisions.push(decision);
      }
      if (pending) {
        return Promise.all(decisions).then((all) => decided(routed, sql, session, context, all, entityKeys));
      }
      return decided(routed, sql, session, context, decisions as FlagDecision[], entityKeys);
    },
    stats: () => ({ ...stats }),
    close() {
      if (ownsResolver) resolver?.close();
    },
  };
}

/** The text of one part of a statement's entity key: its parameter's value, or its constant. */
function sourceText(source: KeySource, values: readonly unknown[] | undefined): string {
  return 'param' in source ? keyText(values?.[source.param - 1]) : source.constant;
}

function otherSide(route: Route): Side {
  return route.serves === 'old' ? 'new' : 'old';
}

function writtenSides(route: Route): Side[] {
  const sides: Side[] = [];
  if (route.writesOld) sides.push('old');
  if (route.writesNew) sides.push('new');
  return sides;
}

/** Removes the hidden columns from rows and fields. */
function strip(result: SqlResult, rewritten: Rewritten, arrays: boolean): void {
  if (arrays) {
    for (const row of result.rows as unknown[][]) row.length = rewritten.outputs;
  } else {
    for (const row of result.rows as Record<string, unknown>[]) for (const name of rewritten.hidden) delete row[name];
  }
  if (Array.isArray(result.fields)) result.fields.length = Math.min(result.fields.length, rewritten.outputs);
}
