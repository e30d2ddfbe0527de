/**
 * The promotion gate's progress for a migration's next step, right by the controls: the
 * step, whether it would be made now, and if not, why, in the words a refusal would use.
 */
import { h } from './dom.js';
import { unknownValue } from './known-value.js';
import type { MigrationView } from './types.js';

/** Fills `target` with the gate of `m`'s next step; empties it when there is none to show. */
export function renderGate(target: HTMLElement, m: MigrationView): void {
  if (m.gate.status !== 'ok') {
    target.replaceChildren('Next step: ', unknownValue(m.gate.reason));
    return;
  }
  const gate = m.gate.value;
  if (gate === null) {
    target.replaceChildren();
    return;
  }
  const ready = gate.problems.length === 0;
  target.replaceChildren(
    h(
      'p',
      null,
      `Next step: ${gate.from} \u2192 ${gate.to}: `,
      h('strong', { className: ready ? 'ok' : 'warn', 'data-testid': 'gate-verdict', text: ready ? 'ready' : 'held' }),
      gate.evidence === null ? '' : ` \u00b7 ${gate.evidence}`,
      gate.gated ? '' : ' \u00b7 serves no more new data, so it needs no evidence',
    ),
    ready
      ? ''
      : h(
          'ul',
          { 'data-testid': 'gate-problems' },
          gate.problems.map((problem) => h('li', { text: problem })),
        ),
  );
}
