/**
 * The page's script, shipped inline as text (users need no build step). It polls
 * `GET /api/state`, renders every value with DOM text nodes (never `innerHTML`: the
 * values come from the database and from other processes), draws the mismatch-rate
 * series as inline SVG, and runs the ramp and kill controls, each behind an in-page
 * confirmation step. Plain ES2020 in a string: no backticks or `${` inside.
 */
/** The page's inline script, as source text. */
export const DASHBOARD_SCRIPT = String.raw`
(() => {
  'use strict';
  const body = document.body;
  const REFRESH_MS = Math.max(250, Number(body.dataset.refreshMs) || 1500);
  const STAGES = String(body.dataset.stages || '').split(' ').filter(Boolean);
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const main = document.getElementById('migrations');
  const statusLine = document.getElementById('status');
  const cards = new Map();
  let timer;

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function s(tag, props, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setProps(node, props);
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function setProps(node, props) {
    if (!props) return;
    for (const key of Object.keys(props)) {
      const value = props[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else node.setAttribute(key === 'className' ? 'class' : key, String(value));
    }
  }

  function int(n) {
    return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
  }
  function pct(rate, digits) {
    return typeof rate === 'number' && Number.isFinite(rate) ? (rate * 100).toFixed(digits === undefined ? 2 : digits) + '%' : '-';
  }
  function ms(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return '-';
    return (value < 10 ? value.toFixed(2) : value.toFixed(1)) + ' ms';
  }
  function time(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString();
  }
  function dateTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }
  function json(value) {
    if (typeof value === 'string') return value;
    try {
      return JSON.stringify(value);
    } catch (error) {
      return String(value);
    }
  }
  function unknown(reason) {
    return h('span', { className: 'warn', title: reason }, 'unknown', h('span', { className: 'muted' }, ' (' + reason + ')'));
  }

  function stat(label, testid) {
    const value = h('span', { className: 'value', 'data-testid': testid });
    return { root: h('div', { className: 'stat' }, h('span', { className: 'label', text: label }), value), value };
  }

  function createCard(m, controls) {
    const stage = stat('Stage', 'stage');
    const percent = stat('Read % (in live)', 'percent');
    const rate = stat('Mismatch rate', 'mismatch-rate');
    const comparisons = stat('Comparisons', 'comparisons');
    const reads = stat('Reads old / new', 'reads');
    const errors = stat('Errors old / new', 'errors');
    const parts = {
      stage: stage.value,
      percent: percent.value,
      rate: rate.value,
      comparisons: comparisons.value,
      reads: reads.value,
      errors: errors.value,
      flagsNote: h('p', { className: 'note', 'data-testid': 'flags-note' }),
      chart: h('div', { 'data-testid': 'mismatch-chart' }),
      latency: h('div', { 'data-testid': 'latency' }),
      backfill: h('div', { 'data-testid': 'backfill' }),
      verification: h('div', { 'data-testid': 'verification' }),
      samplesTitle: h('summary'),
      samples: h('div', { 'data-testid': 'mismatch-samples' }),
    };
    const root = h(
      'section',
      { className: 'card', id: 'm-' + m.name, 'data-migration': m.name },
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
      h(
        'div',
        { className: 'grid' },
        h('div', { className: 'panel' }, h('h3', { text: 'Mismatch rate over time' }), parts.chart),
        h('div', { className: 'panel' }, h('h3', { text: 'Latency per side' }), parts.latency),
      ),
      h(
        'div',
        { className: 'grid' },
        h('div', { className: 'panel' }, h('h3', { text: 'Backfill' }), parts.backfill),
        h('div', { className: 'panel' }, h('h3', { text: 'Last verification' }), parts.verification),
      ),
      h('details', { className: 'samples', open: '' }, parts.samplesTitle, parts.samples),
    );
    const card = { root, parts, controls: null, current: null };
    if (controls) {
      card.controls = createControls(card, m);
      root.append(card.controls.root);
    }
    return card;
  }

  function createControls(card, m) {
    const select = h(
      'select',
      { name: 'stage', 'data-testid': 'stage-select' },
      h('option', { value: '', text: '(keep)' }),
      STAGES.map((stage) => h('option', { value: stage, text: stage })),
    );
    const input = h('input', {
      name: 'percent',
      type: 'number',
      min: '0',
      max: '100',
      step: 'any',
      placeholder: '(keep)',
      'data-testid': 'percent-input',
    });
    const confirmText = h('p');
    const confirmButton = h('button', { type: 'button', className: 'danger', 'data-testid': 'confirm', text: 'Confirm' });
    const cancelButton = h('button', { type: 'button', 'data-testid': 'cancel', text: 'Cancel' });
    const confirmBox = h(
      'div',
      { className: 'confirm', role: 'alertdialog', 'aria-label': 'Confirm change', hidden: '' },
      confirmText,
      confirmButton,
      ' ',
      cancelButton,
    );
    const result = h('p', { className: 'result', role: 'status', 'aria-live': 'polite', 'data-testid': 'control-result' });
    const controls = { root: null, select, input, dirty: false, pending: null };
    const markDirty = () => {
      controls.dirty = true;
    };
    select.addEventListener('change', markDirty);
    input.addEventListener('input', markDirty);

    function ask(pending, text, confirmLabel) {
      controls.pending = pending;
      confirmText.textContent = text;
      confirmButton.textContent = confirmLabel;
      confirmBox.hidden = false;
      result.textContent = '';
      confirmButton.focus();
    }
    function closeConfirm() {
      controls.pending = null;
      confirmBox.hidden = true;
    }

    const apply = h('button', {
      type: 'button',
      className: 'primary',
      'data-testid': 'apply',
      text: 'Apply\u2026',
      onclick: () => {
        const change = {};
        const current = card.current && card.current.flags.status === 'ok' ? card.current.flags.value : null;
        if (select.value !== '' && (!current || select.value !== current.stage)) change.stage = select.value;
        if (input.value.trim() !== '') {
          const value = Number(input.value);
          if (!current || value !== current.percent) change.percent = value;
        }
        if (Object.keys(change).length === 0) {
          result.className = 'result muted';
          result.textContent = 'Nothing to change: pick a different stage or read percentage.';
          return;
        }
        const what = [];
        if (change.stage !== undefined) what.push('stage "' + change.stage + '"');
        if (change.percent !== undefined) what.push('read percentage ' + change.percent + '%');
        ask(
          { kind: 'set', change },
          'Set ' + what.join(' and ') + ' for migration "' + m.name + '"? Every process follows within moments.',
          'Confirm change',
        );
      },
    });
    const kill = h('button', {
      type: 'button',
      className: 'danger',
      'data-testid': 'kill',
      text: 'Kill\u2026',
      onclick: () =>
        ask(
          { kind: 'kill' },
          'Kill migration "' + m.name + '"? Every process reads the old columns again (stage dualwrite, read 0%); dual writes continue.',
          'Confirm kill',
        ),
    });
    cancelButton.addEventListener('click', () => {
      closeConfirm();
      result.className = 'result muted';
      result.textContent = 'Cancelled; nothing changed.';
    });
    confirmButton.addEventListener('click', async () => {
      const pending = controls.pending;
      if (!pending) return;
      closeConfirm();
      confirmButton.disabled = true;
      result.className = 'result muted';
      result.textContent = pending.kind === 'kill' ? 'Killing\u2026' : 'Applying\u2026';
      const path = '/api/migrations/' + encodeURIComponent(m.name) + (pending.kind === 'kill' ? '/kill' : '/flags');
      try {
        const response = await fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(pending.kind === 'kill' ? {} : pending.change),
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          result.className = 'result bad';
          result.textContent = String(answer.error || 'request failed with HTTP ' + response.status);
        } else {
          result.className = 'result ok';
          result.textContent = String(answer.message || 'Done.');
          controls.dirty = false;
          input.value = '';
        }
      } catch (error) {
        result.className = 'result bad';
        result.textContent = 'Could not reach the dashboard server: ' + error;
      } finally {
        confirmButton.disabled = false;
        refreshNow();
      }
    });
    controls.root = h(
      'div',
      { className: 'controls', 'data-testid': 'controls' },
      h('label', null, 'Stage', select),
      h('label', null, 'Read %', input),
      apply,
      kill,
      confirmBox,
      result,
    );
    return controls;
  }

  function renderFlags(card, m) {
    const p = card.parts;
    if (m.flags.status !== 'ok') {
      p.stage.replaceChildren(h('span', { className: 'badge stage-unknown', text: 'unknown' }));
      p.percent.replaceChildren('unknown');
      p.flagsNote.replaceChildren('Flags: ', unknown(m.flags.reason));
      return;
    }
    const f = m.flags.value;
    const stageName = f.stage === null ? 'unknown' : f.stage;
    const stageClass = STAGES.indexOf(stageName) >= 0 ? 'stage-' + stageName : 'stage-unknown';
    p.stage.replaceChildren(h('span', { className: 'badge ' + stageClass, text: stageName }));
    p.percent.replaceChildren(f.percent === null ? 'unknown' : f.percent + '%');
    const notes = ['from ' + (f.source === 'control' ? 'the flag control' : 'the PostgreSQL flag table')];
    if (f.stage === null) {
      notes.push(
        f.raw.stage === null
          ? 'stage flag unset: processes use their last known stage or the default (' + m.defaultStage + ')'
          : 'stage flag holds ' + json(f.raw.stage) + ', not a stage',
      );
    }
    if (f.percent === null && f.raw.percent !== null) notes.push('read % flag holds ' + json(f.raw.percent) + ', not 0-100');
    if (f.updatedAt) notes.push('changed ' + dateTime(f.updatedAt) + (f.updatedBy ? ' by ' + f.updatedBy : ''));
    p.flagsNote.replaceChildren('Flags ' + notes.join('; ') + '.');
    const controls = card.controls;
    if (controls && !controls.dirty) {
      controls.select.value = f.stage === null ? '' : f.stage;
    }
  }

  function renderMetrics(card, m, fleet, now) {
    const p = card.parts;
    if (m.metrics.status !== 'ok') {
      for (const node of [p.rate, p.comparisons, p.reads, p.errors]) node.replaceChildren('unknown');
      p.chart.replaceChildren(unknown(m.metrics.reason));
      p.latency.replaceChildren(unknown(m.metrics.reason));
      p.samplesTitle.textContent = 'Recent mismatches';
      p.samples.replaceChildren(unknown(m.metrics.reason));
      return;
    }
    const x = m.metrics.value;
    if (x === null) {
      const why =
        fleet.status === 'ok' && !fleet.value.published
          ? 'No process has published metrics yet (createMetricsPublisher).'
          : 'No process publishing metrics has reported this migration recently.';
      for (const node of [p.rate, p.comparisons, p.reads, p.errors]) node.replaceChildren('-');
      p.chart.replaceChildren(h('p', { className: 'muted', text: why }));
      p.latency.replaceChildren(h('p', { className: 'muted', text: why }));
      p.samplesTitle.textContent = 'Recent mismatches';
      p.samples.replaceChildren(h('p', { className: 'muted', text: why }));
      return;
    }
    p.rate.replaceChildren(h('span', { className: x.mismatches > 0 ? 'bad' : '', text: pct(x.mismatchRate) }));
    p.comparisons.replaceChildren(int(x.comparisons) + ' (' + int(x.mismatches) + ' mismatched)');
    p.reads.replaceChildren(int(x.reads.bySide.old) + ' / ' + int(x.reads.bySide.new));
    p.errors.replaceChildren(int(x.errors.bySide.old) + ' / ' + int(x.errors.bySide.new));
    p.chart.replaceChildren(chart(x.series, fleet, now));
    p.latency.replaceChildren(latencyTable(x.latency), h('p', { className: 'note', text: 'Percentiles: the highest of ' + x.processes + ' process(es).' }));
    p.samplesTitle.textContent = 'Recent mismatches (' + x.recentMismatches.length + ')';
    p.samples.replaceChildren(samplesTable(x.recentMismatches));
  }

  /** now: the database's clock when the state was read, so browser clock skew can't shift the points. */
  function chart(series, fleet, now) {
    const windowMs = fleet.status === 'ok' ? fleet.value.seriesWindowMs : 3600000;
    const bucketMs = fleet.status === 'ok' ? fleet.value.seriesBucketMs : 60000;
    const width = 360;
    const height = 140;
    const left = 40;
    const bottom = 18;
    const top = 8;
    if (series.length === 0) {
      return h('p', { className: 'muted', text: 'No comparisons in the last ' + minutes(windowMs) + '.' });
    }
    const end = Number.isFinite(now) ? now : Date.now();
    const start = end - windowMs;
    let peak = 0;
    for (const point of series) peak = Math.max(peak, point.rate);
    const yMax = peak <= 0 ? 0.01 : Math.min(1, niceCeil(peak));
    const xOf = (iso) => left + ((Date.parse(iso) + bucketMs / 2 - start) / windowMs) * (width - left - 4);
    const yOf = (rate) => top + (1 - rate / yMax) * (height - top - bottom);
    const svg = s('svg', {
      className: 'chart',
      viewBox: '0 0 ' + width + ' ' + height,
      role: 'img',
      'aria-label': 'mismatch rate over the last ' + minutes(windowMs),
    });
    svg.append(
      s('line', { className: 'axis', x1: left, y1: yOf(0), x2: width - 4, y2: yOf(0) }),
      s('line', { className: 'axis', x1: left, y1: top, x2: left, y2: yOf(0) }),
      s('text', { x: left - 4, y: top + 8, 'text-anchor': 'end' }, pct(yMax, yMax < 0.1 ? 1 : 0)),
      s('text', { x: left - 4, y: yOf(0), 'text-anchor': 'end' }, '0%'),
      s('text', { x: left, y: height - 4 }, '-' + minutes(windowMs)),
      s('text', { x: width - 4, y: height - 4, 'text-anchor': 'end' }, 'now'),
    );
    const coords = series.map((point) => [Math.max(left, xOf(point.at)), yOf(point.rate)]);
    svg.append(s('polyline', { className: 'line', points: coords.map((c) => c[0].toFixed(1) + ',' + c[1].toFixed(1)).join(' ') }));
    series.forEach((point, i) => {
      svg.append(
        s(
          'circle',
          { className: 'dot', cx: coords[i][0].toFixed(1), cy: coords[i][1].toFixed(1), r: 2.5 },
          s('title', null, time(point.at) + ': ' + int(point.mismatches) + ' of ' + int(point.comparisons) + ' mismatched (' + pct(point.rate) + ')'),
        ),
      );
    });
    const last = series[series.length - 1];
    return h(
      'div',
      null,
      svg,
      h(
        'p',
        { className: 'note' },
        'Latest ' + time(last.at) + ': ' + pct(last.rate) + ' (' + int(last.mismatches) + ' of ' + int(last.comparisons) + ' comparisons); one point per ' + seconds(bucketMs) + '.',
      ),
    );
  }

  function seconds(value) {
    return value >= 60000 && value % 60000 === 0 ? value / 60000 + ' min' : value / 1000 + ' s';
  }

  function niceCeil(value) {
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * magnitude) return step * magnitude;
    return 10 * magnitude;
  }

  function minutes(windowMs) {
    return windowMs >= 3600000 && windowMs % 3600000 === 0 ? windowMs / 3600000 + ' h' : Math.round(windowMs / 60000) + ' min';
  }

  function latencyTable(latency) {
    const rows = ['old', 'new', 'both'].map((side) => {
      const l = latency[side];
      return h(
        'tr',
        { 'data-side': side },
        h('th', { text: side === 'both' ? 'both (one statement)' : side }),
        h('td', { className: 'num', text: int(l.count) }),
        h('td', { className: 'num', text: l.count ? ms(l.p50) : '-' }),
        h('td', { className: 'num', text: l.count ? ms(l.p90) : '-' }),
        h('td', { className: 'num', text: l.count ? ms(l.p99) : '-' }),
        h('td', { className: 'num', text: l.count ? ms(l.max) : '-' }),
      );
    });
    return h(
      'table',
      null,
      h('thead', null, h('tr', null, ['side', 'count', 'p50', 'p90', 'p99', 'max'].map((t, i) => h('th', { className: i ? 'num' : '', text: t })))),
      h('tbody', null, rows),
    );
  }

  function samplesTable(samples) {
    if (samples.length === 0) return h('p', { className: 'muted', text: 'No mismatches reported.' });
    return h(
      'table',
      null,
      h('thead', null, h('tr', null, ['seen', 'stage', 'operation', 'key', 'field', 'kind', 'old', 'new'].map((t) => h('th', { text: t })))),
      h(
        'tbody',
        null,
        samples.map((sample) =>
          (sample.diffs.length ? sample.diffs : [{ field: '', kind: '', old: null, new: null }]).map((diff, i) =>
            h(
              'tr',
              { 'data-field': diff.field },
              h('td', { text: i === 0 ? time(sample.at) : '' }),
              h('td', { text: i === 0 ? sample.stage : '' }),
              h('td', { text: i === 0 ? sample.operation : '' }),
              h('td', { className: 'mono', text: i === 0 ? json(sample.key) : '' }),
              h('td', { className: 'mono', 'data-testid': 'diff-field', text: diff.field }),
              h('td', { text: diff.kind }),
              h('td', { className: 'mono', text: json(diff.old) }),
              h('td', { className: 'mono', text: json(diff.new) }),
            ),
          ),
        ),
      ),
    );
  }

  function renderBackfill(card, m) {
    const target = card.parts.backfill;
    if (m.backfill.status !== 'ok') return target.replaceChildren(unknown(m.backfill.reason));
    const b = m.backfill.value;
    if (b === null) return target.replaceChildren(h('p', { className: 'muted', text: 'Not started.' }));
    const bar = h('progress', { max: '1', 'aria-label': 'backfill progress' });
    if (b.fraction !== null) bar.value = b.fraction;
    target.replaceChildren(
      bar,
      h(
        'p',
        null,
        h('span', { className: b.status === 'done' ? 'ok' : '', text: b.status === 'done' ? 'done' : 'running' }),
        ' \u00b7 pass ' + b.pass + ' \u00b7 ' + int(b.rowsDone) + ' of ~' + int(b.totalEstimate) + ' rows',
        b.fraction === null ? '' : ' (' + pct(b.fraction, 1) + ')',
        ' \u00b7 ' + int(b.rowsChanged) + ' changed \u00b7 ranges ' + b.rangesDone + '/' + b.rangeCount,
        b.status === 'done' ? '' : ' \u00b7 ' + b.activeWorkers + ' active worker(s)',
      ),
      h('p', { className: 'note', text: 'updated ' + dateTime(b.updatedAt) + (b.finishedAt ? ', finished ' + dateTime(b.finishedAt) : '') }),
    );
  }

  function renderVerification(card, m) {
    const target = card.parts.verification;
    if (m.verification.status !== 'ok') return target.replaceChildren(unknown(m.verification.reason));
    const v = m.verification.value;
    if (v === null) return target.replaceChildren(h('p', { className: 'muted', text: 'Never verified.' }));
    target.replaceChildren(
      h(
        'p',
        null,
        h('span', { className: v.passed ? 'ok' : 'bad', text: v.passed ? 'passed' : 'failed' }),
        ' ' + dateTime(v.at) + ' \u00b7 ' + int(v.checkedRows) + ' rows checked, ' + int(v.mismatchedRows) + ' mismatched, ' + int(v.missingRows) + ' missing',
      ),
      v.writePathChangedAt
        ? h('p', { className: 'warn', text: 'The write path changed since (' + dateTime(v.writePathChangedAt) + '): verify again.' })
        : null,
    );
  }

  function render(state) {
    const seen = new Set();
    for (const m of state.migrations) {
      seen.add(m.name);
      let card = cards.get(m.name);
      if (!card) {
        card = createCard(m, state.controls);
        cards.set(m.name, card);
        main.append(card.root);
      }
      card.current = m;
      renderFlags(card, m);
      renderMetrics(card, m, state.fleet, Date.parse(state.generatedAt));
      renderBackfill(card, m);
      renderVerification(card, m);
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.root.remove();
        cards.delete(name);
      }
    }
    const fleet = state.fleet;
    const processes =
      fleet.status === 'ok'
        ? fleet.value.processes + ' process(es) publishing metrics' + (fleet.value.staleProcesses ? ', ' + fleet.value.staleProcesses + ' stale' : '')
        : 'metrics unknown: ' + fleet.reason;
    statusLine.textContent = 'Updated ' + time(state.generatedAt) + ' \u00b7 ' + processes + (state.controls ? '' : ' \u00b7 read-only (no flag control)');
    body.classList.remove('stale');
    body.dataset.updated = state.generatedAt;
  }

  let polling = false;
  let again = false;
  async function poll() {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    clearTimeout(timer);
    try {
      const response = await fetch('/api/state', { cache: 'no-store', headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      render(await response.json());
    } catch (error) {
      body.classList.add('stale');
      statusLine.textContent = 'Could not refresh (' + error + '); showing the last data. Retrying\u2026';
    } finally {
      polling = false;
      if (again) {
        again = false;
        void poll();
      } else {
        timer = setTimeout(poll, REFRESH_MS);
      }
    }
  }

  function refreshNow() {
    void poll();
  }

  void poll();
})();
`;
