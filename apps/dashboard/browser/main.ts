/**
 * The dashboard page's script, the entry of its bundle. The server renders the page's
 * shell with its settings as `data-` attributes on `<body>`; this script polls
 * `GET /api/state` and renders every value with DOM text nodes, never as markup.
 */

import { SERIES_WINDOWS } from '../series-windows.js';
import { fetchState } from './api-client.js';
import { createDashboardView } from './dashboard-view.js';
import { h } from './dom.js';
import { createPoller, type Poller } from './poller.js';
import { createTokenGate } from './token-gate.js';

function element(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the dashboard page has no #${id} element`);
  return found;
}

const body = document.body;
const refreshMs = Math.max(250, Number(body.dataset['refreshMs']) || 1500);
const stages = String(body.dataset['stages'] || '')
  .split(' ')
  .filter(Boolean);

// The server renders the controls' place only when it takes changes.
const gateSlot = document.getElementById('token-gate');
const gate = gateSlot === null ? undefined : createTokenGate();
if (gate !== undefined) gateSlot?.replaceWith(gate.root);

let poller: Poller | undefined;

// One window for every chart on the page; a change shows at once.
const windowSelect = h(
  'select',
  { name: 'window', 'aria-label': 'Chart window', 'data-testid': 'window-select' },
  h('option', { value: '', text: 'default' }),
  SERIES_WINDOWS.map((w) => h('option', { value: w.name, text: w.label })),
);
element('status').after(h('label', { className: 'window' }, 'Charts over ', windowSelect));
windowSelect.addEventListener('change', () => poller?.refreshNow());

const view = createDashboardView({
  body,
  main: element('migrations'),
  statusLine: element('status'),
  stages,
  refreshNow: () => poller?.refreshNow(),
  gate,
});
poller = createPoller(async () => {
  try {
    view.render(await fetchState(windowSelect.value));
  } catch (error) {
    view.showError(error);
  }
}, refreshMs);
