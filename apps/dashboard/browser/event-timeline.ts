/**
 * A migration's timeline: its latest events, newest first, each as when, what, who and
 * why. A stage move reads `shadow 0% -> live 25%`, so the on-call sees at a glance which
 * change came before the mismatches started, and who to ask.
 */
import { h } from './dom.js';
import { dateTime, int, json } from './format.js';
import { renderKnown } from './known-value.js';
import type { EventView, MigrationView } from './types.js';

/** Fills `target` with the timeline of `m`. */
export function renderTimeline(target: HTMLElement, m: MigrationView): void {
  const events =
    m.events.status === 'ok' && m.events.value.length === 0 ? { status: 'ok' as const, value: null } : m.events;
  renderKnown(target, events, 'No events yet.', (list) => [
    h(
      'table',
      null,
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ['when', 'what', 'who', 'why'].map((name) => h('th', { text: name })),
        ),
      ),
      h(
        'tbody',
        null,
        list.map((event) =>
          h(
            'tr',
            { 'data-kind': event.kind },
            h('td', { text: dateTime(event.at) }),
            h('td', { 'data-testid': 'event-what', text: describe(event) }),
            h('td', { text: text(event.details['actor']) }),
            h('td', { text: text(event.details['reason'] ?? event.details['overridden']) }),
          ),
        ),
      ),
    ),
  ]);
}

/** What the event did, in one line. */
function describe(event: EventView): string {
  const d = event.details;
  switch (event.kind) {
    case 'stage': {
      const what = d['action'] === 'kill' ? 'kill' : 'flags';
      const gate = typeof d['gate'] === 'string' ? `; gate: ${d['gate']}` : '';
      return `${what}: ${flags(d['from'])} \u2192 ${flags(d['to'])}${d['forced'] === true ? ' (forced)' : ''}${gate}`;
    }
    case 'force':
      return `forced ${text(d['action'])}`;
    case 'verify':
      return (
        `verify ${d['passed'] === true ? 'passed' : 'failed'}: ${int(d['checkedRows'])} rows checked, ` +
        `${int(d['mismatchedRows'])} mismatched, ${int(d['missingRows'])} missing`
      );
    case 'backfill':
      return `backfill ${text(d['action'])}${d['pass'] === undefined ? '' : `, pass ${d['pass']}`}${
        d['rowsDone'] === undefined ? '' : `, ${int(d['rowsDone'])} rows`
      }`;
    case 'expand':
      return d['backfillReset'] === true ? 'expand (backfill reset)' : 'expand';
    default:
      return event.kind + (d['action'] === undefined ? '' : ` ${text(d['action'])}`);
  }
}

/** A stage move's side: `live 25%`, with unset values said so. */
function flags(value: unknown): string {
  const v = (value ?? {}) as { stage?: unknown; percent?: unknown };
  const stage = v.stage === null || v.stage === undefined ? '(unset)' : json(v.stage);
  return v.percent === null || v.percent === undefined ? stage : `${stage} ${json(v.percent)}%`;
}

function text(value: unknown): string {
  return value === undefined || value === null || value === '' ? '-' : json(value);
}
