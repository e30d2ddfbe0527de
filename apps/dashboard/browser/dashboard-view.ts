/**
 * The page as a whole: a card per migration, in the server's order, and the status line
 * saying when the data was read, by how many publishing processes, and whether the last
 * refresh failed (the cards then keep the last data they had).
 */
import { time } from './format.js';
import { createMigrationCard, type MigrationCard } from './migration-card.js';
import type { TokenGate } from './token-gate.js';
import type { DashboardState } from './types.js';

/** Where the page is drawn and what it was served with. */
export interface DashboardViewOptions {
  readonly body: HTMLElement;
  /** Holds the cards. */
  readonly main: HTMLElement;
  readonly statusLine: HTMLElement;
  /** Every stage, in lifecycle order. */
  readonly stages: readonly string[];
  /** Refreshes the page at once (after a change). */
  readonly refreshNow: () => void;
  /** The dashboard token, when the dashboard offers ramp and kill controls. */
  readonly gate: TokenGate | undefined;
}

/** The page, re-rendered from each state read. */
export interface DashboardView {
  /** Shows `state`: updates the cards, adds new migrations' cards, drops cards of gone ones. */
  render(state: DashboardState): void;
  /** Marks the page stale after a failed refresh, keeping what it shows. */
  showError(error: unknown): void;
}

/** Builds the page's view. */
export function createDashboardView(options: DashboardViewOptions): DashboardView {
  const { body, main, statusLine } = options;
  const cards = new Map<string, MigrationCard>();
  return {
    render(state) {
      const seen = new Set<string>();
      for (const m of state.migrations) {
        seen.add(m.name);
        let card = cards.get(m.name);
        if (!card) {
          card = createMigrationCard(m, {
            stages: options.stages,
            gate: options.gate,
            refreshNow: options.refreshNow,
          });
          cards.set(m.name, card);
          main.append(card.root);
        }
        card.render(m, state);
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
          ? `${fleet.value.processes} process(es) publishing metrics` +
            (fleet.value.staleProcesses ? `, ${fleet.value.staleProcesses} stale` : '')
          : `metrics unknown: ${fleet.reason}`;
      statusLine.textContent =
        `Updated ${time(state.generatedAt)} \u00b7 ${processes}` + (state.controls ? '' : ' \u00b7 read-only');
      body.classList.remove('stale');
      body.dataset['updated'] = state.generatedAt;
    },
    showError(error) {
      body.classList.add('stale');
      statusLine.textContent = `Could not refresh (${error}); showing the last data. Retrying\u2026`;
    },
  };
}
