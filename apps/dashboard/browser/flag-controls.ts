/**
 * A migration's ramp and kill controls. Nothing changes on a click alone: each change is
 * spelled out in an in-page confirmation first (not `window.confirm`, which a page can
 * suppress), sent with the dashboard token, and the server's answer, refusal or not, is
 * shown as it came.
 */
import { type ControlRequest, sendControl } from './api-client.js';
import { h } from './dom.js';
import type { TokenGate } from './token-gate.js';
import type { FlagChange, FlagsView } from './types.js';

/** What {@link createFlagControls} needs. */
export interface FlagControlsOptions {
  /** The migration's name. */
  readonly migration: string;
  /** Every stage, in lifecycle order (the stage menu). */
  readonly stages: readonly string[];
  /** The flags as last read, when they could be read: a change to the same value is no change. */
  readonly current: () => FlagsView | null;
  /** Refreshes the page once a change is made or refused. */
  readonly refreshNow: () => void;
  /** The dashboard token the changes are sent with. */
  readonly gate: TokenGate;
}

/** A migration's controls. */
export interface FlagControls {
  readonly root: HTMLElement;
  /** Shows the stored stage in the menu, unless the operator has started a change. */
  showStage(stage: string | null): void;
}

/** Builds the controls of one migration. */
export function createFlagControls(options: FlagControlsOptions): FlagControls {
  const { migration, refreshNow, gate } = options;
  const select = h(
    'select',
    { name: 'stage', 'data-testid': 'stage-select' },
    h('option', { value: '', text: '(keep)' }),
    options.stages.map((stage) => h('option', { value: stage, text: stage })),
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
  const result = h('p', {
    className: 'result',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': 'control-result',
  });
  // Once the operator touches the form, refreshes stop overwriting it.
  let dirty = false;
  let pending: ControlRequest | null = null;
  const markDirty = () => {
    dirty = true;
  };
  select.addEventListener('change', markDirty);
  input.addEventListener('input', markDirty);

  function show(className: string, text: string): void {
    result.className = className;
    result.textContent = text;
  }

  function ask(request: ControlRequest, text: string, confirmLabel: string): void {
    if (gate.token() === null) {
      show('result bad', 'The controls are locked: paste the dashboard token at the top of the page first.');
      gate.ask();
      return;
    }
    pending = request;
    confirmText.textContent = text;
    confirmButton.textContent = confirmLabel;
    confirmBox.hidden = false;
    result.textContent = '';
    confirmButton.focus();
  }

  function closeConfirm(): void {
    pending = null;
    confirmBox.hidden = true;
  }

  const apply = h('button', {
    type: 'button',
    className: 'primary',
    'data-testid': 'apply',
    text: 'Apply\u2026',
    onclick: () => {
      const change: FlagChange = {};
      const current = options.current();
      if (select.value !== '' && (!current || select.value !== current.stage)) change.stage = select.value;
      if (input.value.trim() !== '') {
        const value = Number(input.value);
        if (!current || value !== current.percent) change.percent = value;
      }
      if (change.stage === undefined && change.percent === undefined) {
        show('result muted', 'Nothing to change: pick a different stage or read percentage.');
        return;
      }
      const what: string[] = [];
      if (change.stage !== undefined) what.push(`stage "${change.stage}"`);
      if (change.percent !== undefined) what.push(`read percentage ${change.percent}%`);
      ask(
        { kind: 'set', change },
        `Set ${what.join(' and ')} for migration "${migration}"? Every process follows within moments.`,
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
        `Kill migration "${migration}"? Every process reads the old columns again (stage dualwrite, read 0%); ` +
          'dual writes continue.',
        'Confirm kill',
      ),
  });
  cancelButton.addEventListener('click', () => {
    closeConfirm();
    show('result muted', 'Cancelled; nothing changed.');
  });
  confirmButton.addEventListener('click', async () => {
    const request = pending;
    const token = gate.token();
    closeConfirm();
    if (!request) return;
    if (token === null) {
      show('result bad', 'The controls were locked; nothing changed.');
      return;
    }
    confirmButton.disabled = true;
    show('result muted', request.kind === 'kill' ? 'Killing\u2026' : 'Applying\u2026');
    try {
      const answer = await sendControl(migration, request, token);
      if (answer.ok) {
        show('result ok', answer.message);
        dirty = false;
        input.value = '';
      } else {
        show('result bad', `Nothing changed: ${answer.message}`);
        if (answer.unauthorized) gate.refused(answer.message);
      }
    } catch (error) {
      show('result bad', `Could not reach the dashboard server: ${error}`);
    } finally {
      confirmButton.disabled = false;
      refreshNow();
    }
  });

  return {
    root: h(
      'div',
      { className: 'controls', 'data-testid': 'controls' },
      h('label', null, 'Stage', select),
      h('label', null, 'Read %', input),
      apply,
      kill,
      confirmBox,
      result,
    ),
    showStage(stage) {
      if (!dirty) select.value = stage === null ? '' : stage;
    },
  };
}
