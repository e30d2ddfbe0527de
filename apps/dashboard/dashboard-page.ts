/**
 * The dashboard's one HTML page: inline CSS and script (the bundle of `browser/`), nothing
 * else to fetch. It never holds the dashboard token: anyone who can load the page could
 * read it there, so the operator types it in. The server renders only the migrations'
 * names and descriptions (escaped); everything read from the database is rendered by the
 * script with DOM text nodes, never as markup, and a nonce-based Content-Security-Policy stops any script the page did not ship.
 */
import { type Migration, STAGES } from '../../src/index.js';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** What the page is rendered from. */
export interface PageOptions {
  readonly migrations: readonly Migration[];
  readonly controls: boolean;
  readonly refreshMs: number;
  /** Per-response CSP nonce for the inline style and script. */
  readonly nonce: string;
  /** The page's script, safe to inline (see `loadDashboardScript`). */
  readonly script: string;
}

/** The `Content-Security-Policy` header value for a page rendered with `nonce`. */
export function pageContentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2228; --muted: #5d6670; --bg: #f6f7f9; --card: #fff; --line: #dde1e6;
  --accent: #2f6fdf; --bad: #c8372d; --good: #23834a; --warn: #b7791f; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ed; --muted: #9aa4ae; --bg: #15181c; --card: #1e2227;
  --line: #323840; --accent: #6ea0ff; --bad: #ff6b60; --good: #4cc37a; --warn: #e5a93c; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line);
  background: var(--card); position: sticky; top: 0; z-index: 1; }
header.top h1 { font-size: 1.1rem; margin: 0; }
#status { color: var(--muted); }
.window { color: var(--muted); font-size: 12px; white-space: nowrap; }
.window select { font: inherit; }
.gate { margin-left: auto; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; justify-content: flex-end;
  max-width: 40rem; }
.gate-form { display: flex; gap: .35rem; }
.gate-form[hidden], .gate button[hidden] { display: none; }
.gate input { font: inherit; padding: .2rem .35rem; width: 16rem; }
body.stale #status { color: var(--bad); }
nav#index { padding: .5rem 1.25rem 0; color: var(--muted); }
nav#index ul { margin: 0; padding-left: 1.1rem; }
nav#index a { color: var(--accent); }
main { padding: 1rem 1.25rem; display: grid; gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; }
.card h2 { margin: 0; font-size: 1.15rem; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.desc { margin: .2rem 0; }
.meta, .note, .muted { color: var(--muted); font-size: 12px; }
.stats { display: flex; flex-wrap: wrap; gap: .5rem 1.75rem; margin: .75rem 0 .25rem; }
.stat { display: flex; flex-direction: column; }
.stat .label { color: var(--muted); font-size: 12px; }
.stat .value { font-size: 1.2rem; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 999px; border: 1px solid var(--line); font-weight: 600; }
.stage-live, .stage-rampdown, .stage-complete { color: var(--good); }
.stage-shadow, .stage-dualwrite { color: var(--accent); }
.stage-unknown { color: var(--warn); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 1rem; margin-top: .75rem; }
.panel.timeline { margin-top: .75rem; }
.gate-progress p, .gate-progress ul { margin: .25rem 0; }
.panel h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 .35rem; }
/* uPlot's own stylesheet comes with the script; these fit its legend to the card. */
.time-chart .u-legend { font-size: 11px; color: var(--muted); }
.time-chart .u-legend th { font-weight: 500; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .2rem .5rem .2rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td.num, th.num { text-align: right; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
progress { width: 100%; height: .8rem; }
.ok { color: var(--good); } .bad { color: var(--bad); } .warn { color: var(--warn); }
details.samples { margin-top: .75rem; }
details.samples summary { cursor: pointer; font-weight: 600; }
.controls { margin: .5rem 0; padding: .5rem 0; border-top: 1px dashed var(--line); border-bottom: 1px dashed var(--line);
  display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; }
.controls label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.controls select, .controls input { font: inherit; padding: .2rem .35rem; min-width: 7rem; }
button { font: inherit; padding: .3rem .8rem; border-radius: 6px; border: 1px solid var(--line); background: var(--card);
  color: var(--fg); cursor: pointer; }
button.primary { border-color: var(--accent); color: var(--accent); }
button.danger { border-color: var(--bad); color: var(--bad); }
.confirm { flex-basis: 100%; border: 1px solid var(--warn); border-radius: 6px; padding: .5rem .75rem; }
.confirm p { margin: 0 0 .5rem; }
.confirm[hidden] { display: none; }
.result { flex-basis: 100%; margin: 0; min-height: 1.2em; }
`;

/** Renders the page shell; the script fills it from `GET /api/state`. */
export function renderDashboardPage(options: PageOptions): string {
  const nonce = escapeHtml(options.nonce);
  const index = options.migrations
    .map(
      (m) =>
        `<li><a href="#m-${escapeHtml(m.name)}">${escapeHtml(m.name)}</a>${
          m.description === '' ? '' : ` <span class="muted">${escapeHtml(m.description)}</span>`
        }</li>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>flagshift dashboard</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body data-refresh-ms="${options.refreshMs}" data-controls="${options.controls}" data-stages="${escapeHtml(STAGES.join(' '))}">
<header class="top"><h1>flagshift</h1><span id="status" role="status">Loading&hellip;</span>${
    options.controls ? '<div id="token-gate"></div>' : ''
  }</header>
<nav id="index" aria-label="Migrations"><ul>${index}</ul></nav>
<main id="migrations"></main>
<noscript><p>This page needs JavaScript to refresh. The same data is at <a href="/api/state">/api/state</a>.</p></noscript>
<script nonce="${nonce}">${options.script}</script>
</body>
</html>
`;
}
