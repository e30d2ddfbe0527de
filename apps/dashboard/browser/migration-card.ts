/**
 * One migration's card: what it is (name, description, table, fields, flag keys), its
 * stage and read percentage, the promotion gate of its next step and, when the dashboard
 * takes changes, its ramp and kill controls right under them; then its metrics, backfill,
 * last verification and timeline of events. Built once, re-rendered in place on every
 * refresh so the operator's focus and open panels stay.
 */
import { h } from './dom.js';
import { renderTimeline } from './event-timeline.js';
import { createFlagControls, type FlagControls } from './flag-controls.js';
import { createFleetCharts } from './fleet-charts.js';
import { dateTime, int, json, pct } from './format.js';
import { renderGate } from './gate-progress.js';
import { renderKnown, unknownValue } from './known-value.js';
import { type MetricsParts, renderMetrics } from './metrics-panels.js';
import type { TokenGate } from './token-gate.js';
import type { DashboardState, FlagsView, MigrationView } from './types.js';

/** What {@link createMigrationCard} needs besides the migration. */
export interface MigrationCardOptions {
  /** Every stage, in lifecycle order. */
  readonly stages: readonly string[];
  /** The dashboard token, when the dashboard offers ramp and kill controls. */
  readonly gate: TokenGate | undefined;
  /** Refreshes the page at once (after a change). */
  readonly refreshNow: () => void;
}

/** A migration's card on the page. */
export interface MigrationCard {
  readonly root: HTMLElement;
  /** Shows `m` as read in `state`. */
  render(m: MigrationView, state: DashboardState): void;
}

interface CardParts extends MetricsParts {
  readonly stage: HTMLElement;
  readonly percent: HTMLElement;
  readonly flagsNote: HTMLElement;
  readonly backfill: HTMLElement;
  readonly verification: HTMLElement;
  readonly timeline: HTMLElement;
  readonly gate: HTMLElement;
}

/** One figure with its label; `value` is filled on render. */
function stat(label: string, testid: string): { root: HTMLElement; value: HTMLElement } {
  const value = h('span', { className: 'value', 'data-testid': testid });
  return { root: h('div', { className: 'stat' }, h('span', { className: 'label', text: label }), value), value };
}

/** Builds the card of `m` (empty until {@link MigrationCard.render}). */
export function createMigrationCard(m: MigrationView, options: MigrationCardOptions): MigrationCard {
  const stage = stat('Stage', 'stage');
  const percent = stat('Read % (in live)', 'percent');
  const rate = stat('Mismatch rate', 'mismatch-rate');
  const comparisons = stat('Comparisons', 'comparisons');
  const reads = stat('Reads old / new', 'reads');
  const errors = stat('Errors old / new', 'errors');
  const parts: CardParts = {
    stage: stage.value,
    percent: percent.value,
    rate: rate.value,
    comparisons: comparisons.value,
    reads: reads.value,
    errors: errors.value,
    flagsNote: h('p', { className: 'note', 'data-testid': 'flags-note' }),
    charts: createFleetCharts(),
    latency: h('div', { 'data-testid': 'latency' }),
    backfill: h('div', { 'data-testid': 'backfill' }),
    verification: h('div', { 'data-testid': 'verification' }),
    timeline: h('div', { 'data-testid': 'timeline' }),
    gate: h('div', { className: 'gate-progress', 'data-testid': 'gate' }),
    samplesTitle: h('summary'),
    samples: h('div', { 'data-testid': 'mismatch-samples' }),
  };
  const root = h(
    'section',
    { className: 'card', id: `m-${m.name}`, 'data-migration': m.name },
    h(
      'header',
      null,
      h('h2', { text: m.name }),
      m.description ? h('p', { className: 'desc', 'data-testid': 'description', text: m.description }) : null,
      h(
        'p',
        { className: 'meta' },
        'table ',
        h('code', { text: m.table }),
        ' \u00b7 fields ',
        h('code', { text: m.fields.join(', ') }),
        ' \u00b7 flags ',
        h('code', { text: m.stageFlagKey }),
        ', ',
        h('code', { text: m.percentFlagKey }),
      ),
    ),
    h('div', { className: 'stats' }, stage.root, percent.root, rate.root, comparisons.root, reads.root, errors.root),
    parts.flagsNote,
    parts.gate,
    h(
      'div',
      { className: 'grid' },
      h('div', { className: 'panel' }, h('h3', { text: 'Mismatch rate' }), parts.charts.mismatch.root),
      h('div', { className: 'panel' }, h('h3', { text: 'Error rate per side' }), parts.charts.errors.root),
      h('div', { className: 'panel' }, h('h3', { text: 'p99 latency per side' }), parts.charts.latency.root),
      h('div', { className: 'panel' }, h('h3', { text: 'Latency per side (now)' }), parts.latency),
    ),
    h(
      'div',
      { className: 'grid' },
      h('div', { className: 'panel' }, h('h3', { text: 'Backfill' }), parts.backfill),
      h('div', { className: 'panel' }, h('h3', { text: 'Last verification' }), parts.verification),
    ),
    h('div', { className: 'panel timeline' }, h('h3', { text: 'Timeline (newest first)' }), parts.timeline),
    h('details', { className: 'samples', open: '' }, parts.samplesTitle, parts.samples),
  );

  let current: MigrationView = m;
  let controls: FlagControls | undefined;
  if (options.gate !== undefined) {
    controls = createFlagControls({
      migration: m.name,
      stages: options.stages,
      current: () => (current.flags.status === 'ok' ? current.flags.value : null),
      refreshNow: options.refreshNow,
      gate: options.gate,
    });
    // Right under the flags they change and the gate, in view without scrolling: at 3 a.m. a kill can't wait for a scroll.
    parts.gate.after(controls.root);
  }

  return {
    root,
    render(view, state) {
      current = view;
      renderFlags(parts, view, options.stages);
      if (view.flags.status === 'ok') controls?.showStage(view.flags.value.stage);
      renderMetrics(parts, view, state.fleet, Date.parse(state.generatedAt));
      renderBackfill(parts.backfill, view);
      renderVerification(parts.verification, view);
      renderTimeline(parts.timeline, view);
      renderGate(parts.gate, view);
    },
  };
}

function renderFlags(p: CardParts, m: MigrationView, stages: readonly string[]): void {
  if (m.flags.status !== 'ok') {
    p.stage.replaceChildren(h('span', { className: 'badge stage-unknown', text: 'unknown' }));
    p.percent.replaceChildren('unknown');
    p.flagsNote.replaceChildren('Flags: ', unknownValue(m.flags.reason));
    return;
  }
  const f: FlagsView = m.flags.value;
  const stageName = f.stage === null ? 'unknown' : f.stage;
  const stageClass = stages.includes(stageName) ? `stage-${stageName}` : 'stage-unknown';
  p.stage.replaceChildren(h('span', { className: `badge ${stageClass}`, text: stageName }));
  p.percent.replaceChildren(f.percent === null ? 'unknown' : `${f.percent}%`);
  const notes = [`from ${f.source === 'control' ? 'the flag control' : 'the PostgreSQL flag table'}`];
  if (f.stage === null) {
    notes.push(
      f.raw.stage === null
        ? `stage flag unset: processes use their last known stage or the default (${m.defaultStage})`
        : `stage flag holds ${json(f.raw.stage)}, not a stage`,
    );
  }
  if (f.percent === null && f.raw.percent !== null) notes.push(`read % flag holds ${json(f.raw.percent)}, not 0-100`);
  if (f.updatedAt) notes.push(`changed ${dateTime(f.updatedAt)}${f.updatedBy ? ` by ${f.updatedBy}` : ''}`);
  p.flagsNote.replaceChildren(`Flags ${notes.join('; ')}.`);
}

function renderBackfill(target: HTMLElement, m: MigrationView): void {
  renderKnown(target, m.backfill, 'Not started.', (b) => {
    const done = b.status === 'done';
    const bar = h('progress', { max: '1', 'aria-label': 'backfill progress' });
    if (b.fraction !== null) bar.value = b.fraction;
    return [
      bar,
      h(
        'p',
        null,
        h('span', { className: done ? 'ok' : '', text: done ? 'done' : 'running' }),
        ` \u00b7 pass ${b.pass} \u00b7 ${int(b.rowsDone)} of ~${int(b.totalEstimate)} rows`,
        b.fraction === null ? '' : ` (${pct(b.fraction, 1)})`,
        ` \u00b7 ${int(b.rowsChanged)} changed \u00b7 ranges ${b.rangesDone}/${b.rangeCount}`,
        done ? '' : ` \u00b7 ${b.activeWorkers} active worker(s)`,
      ),
      h('p', {
        className: 'note',
        text: `updated ${dateTime(b.updatedAt)}${b.finishedAt ? `, finished ${dateTime(b.finishedAt)}` : ''}`,
      }),
    ];
  });
}

function renderVerification(target: HTMLElement, m: MigrationView): void {
  renderKnown(target, m.verification, 'Never verified.', (v) => {
    const summary = h(
      'p',
      null,
      h('span', { className: v.passed ? 'ok' : 'bad', text: v.passed ? 'passed' : 'failed' }),
      ` ${dateTime(v.at)} \u00b7 ${int(v.checkedRows)} rows checked, ${int(v.mismatchedRows)} mismatched, ` +
        `${int(v.missingRows)} missing`,
    );
    if (!v.writePathChangedAt) return [summary];
    const changed = `The write path changed after it started (${dateTime(v.writePathChangedAt)}): verify again.`;
    return [summary, h('p', { className: 'warn', text: changed })];
  });
}
