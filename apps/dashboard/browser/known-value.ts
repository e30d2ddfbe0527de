/**
 * How the page shows a value read from one source: the value, `unknown` with the reason
 * when the source could not be read, or a note when there is nothing yet. Never a default
 * in place of what could not be read.
 */
import { h } from './dom.js';
import type { Known } from './types.js';

/** `unknown (reason)`, the reason also as the tooltip. */
export function unknownValue(reason: string): HTMLElement {
  return h('span', { className: 'warn', title: reason }, 'unknown', h('span', { className: 'muted' }, ` (${reason})`));
}

/**
 * Fills `target` from `known`: unknown with its reason, `empty` when the value is `null`,
 * else what `render` makes of the value.
 */
export function renderKnown<T>(
  target: HTMLElement,
  known: Known<T | null>,
  empty: string,
  render: (value: T) => readonly (Node | string)[],
): void {
  if (known.status !== 'ok') target.replaceChildren(unknownValue(known.reason));
  else if (known.value === null) target.replaceChildren(h('p', { className: 'muted', text: empty }));
  else target.replaceChildren(...render(known.value));
}
