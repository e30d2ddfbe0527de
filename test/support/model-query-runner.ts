/**
 * Runs the model's query commands (`find` with operators and projections, `count`, page
 * walks) against a real repository and checks the rows, the read events and the
 * comparisons against what the {@link UsersModel} says. Every assertion names the
 * invariant it holds.
 */
import type { Repository, Side } from 'flagshift';
import { expect } from 'vitest';
import type { User, UsersModel } from './model.js';
import type { EventLog } from './model-events.js';
import { entityOf, matchingIds, PAGE_ORDERS, type QueryCommand, touchesMigration, whereOf } from './model-queries.js';

/** What a query command runs against. */
export interface QueryTarget {
  readonly repo: Repository<User, 'id'>;
  readonly model: UsersModel;
  readonly events: EventLog;
}

type Query = Exclude<QueryCommand, { op: 'insertGenerated' }>;

/** Runs one query command and checks it against the model. */
export async function runQuery(target: QueryTarget, command: Query): Promise<void> {
  const { repo, model, events } = target;
  const what = JSON.stringify(command);
  const options = command.tk === undefined ? undefined : { context: { targetingKey: command.tk } };
  const where = whereOf(command.filters) as never;
  const before = events.mark();
  const whole = touchesMigration(command.filters);
  const route = model.route(command.tk ?? '');
  // A query on the migrated field runs as a whole on the side the call's route serves.
  const side: Side = whole ? route.serves : 'old';
  const served = matchingIds(model, command.filters, side);
  const other = whole ? matchingIds(model, command.filters, side === 'old' ? 'new' : 'old') : served;
  const sameIds = served.length === other.length && served.every((id, index) => id === other[index]);

  if (command.op === 'count') {
    const count = await repo.count(where, options);
    expect(count, `invariant: count is the number of rows the served side matches (${what})`).toBe(served.length);
    expect(
      events.ofType('comparison', before).map((event) => event.matched),
      `invariant: a comparing count compares with the other side's count (${what})`,
    ).toEqual(whole && route.compares ? [served.length === other.length] : []);
    return;
  }

  const select = command.select;
  const readsUsername = select === undefined || select.includes('username');
  // Per entity, the side its own route serves (untouched queries), or the query's side.
  const perEntity = (id: number) => model.route(command.tk ?? String(id));
  const expected = served.map((id) => entityOf(model, id, whole ? side : perEntity(id).serves, select));

  if (command.op === 'pages') {
    const orderBy = PAGE_ORDERS[command.order];
    const email = (id: number) => model.rows.get(id)!.email;
    const orderedIds = [...served].sort((a, b) => {
      if (command.order === 'id-desc') return b - a;
      const byEmail = email(a) < email(b) ? -1 : email(a) > email(b) ? 1 : 0;
      return (command.order === 'email-asc' ? byEmail : -byEmail) || a - b;
    });
    const walked: unknown[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const query = { where, orderBy, limit: command.limit, ...(after === undefined ? {} : { after }) };
      const page = await (select === undefined
        ? repo.findPage(query, options)
        : repo.findPage({ ...query, select: [...select] }, options));
      expect(page.items.length, `invariant: a page holds at most its size (${what})`).toBeLessThanOrEqual(
        command.limit,
      );
      walked.push(...page.items);
      after = page.next;
      pages++;
    } while (after !== undefined && pages <= served.length + 1);
    expect(
      walked,
      `invariant: walking the pages returns every matching row once, in order, with the selected fields (${what})`,
    ).toEqual(orderedIds.map((id) => entityOf(model, id, whole ? side : perEntity(id).serves, select)));
    return;
  }

  const actual = await repo.find(select === undefined ? { where } : { where, select: [...select] }, options);
  expect(
    actual,
    `invariant: find returns the rows the served side matches, with the selected fields (${what})`,
  ).toEqual(expected);
  const reads = events
    .ofType('read', before)
    .map((event) => `${event.stage}:${event.route}:${event.served}:${event.count}`);
  const comparisons = events.ofType('comparison', before).map((event) => event.matched);
  if (whole) {
    expect(reads, `invariant: a query on the migrated field is served as a whole from one side (${what})`).toEqual([
      `${model.stage}:${route.effective}:${side}:${served.length}`,
    ]);
    const sameValues = !readsUsername || served.every((id) => model.rows.get(id)!.old === model.rows.get(id)!.new);
    expect(
      comparisons,
      `invariant: a comparing query diffs the result sets (rows, and the selected migrated fields) of both sides (${what})`,
    ).toEqual(route.compares ? [sameIds && sameValues] : []);
  } else if (readsUsername) {
    const tally = new Map<string, number>();
    for (const id of served) {
      const label = `${model.stage}:${perEntity(id).effective}:${perEntity(id).serves}`;
      tally.set(label, (tally.get(label) ?? 0) + 1);
    }
    expect(reads.sort(), `invariant: other queries route and count each entity by its own key (${what})`).toEqual(
      [...tally].map(([label, count]) => `${label}:${count}`).sort(),
    );
    expect(comparisons, `invariant: each entity read compares as a read by key does (${what})`).toEqual(
      served.filter((id) => perEntity(id).compares).map((id) => model.rows.get(id)!.old === model.rows.get(id)!.new),
    );
  } else {
    expect(
      [reads, comparisons],
      `invariant: a projection without the migrated field reads and compares no migrated column (${what})`,
    ).toEqual([[], []]);
  }
  expect(events.ofType('mismatch', before).length, `invariant: every mismatch carries a sample (${what})`).toBe(
    comparisons.filter((matched) => !matched).length,
  );
}
