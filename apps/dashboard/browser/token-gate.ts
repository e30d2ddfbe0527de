/**
 * The dashboard token in the page. The server never puts it in the page (anyone who can
 * load the page would have it), so the operator pastes it once; it is checked with the
 * server, then kept in this tab's `sessionStorage` (gone when the tab closes, never sent
 * anywhere on its own, unlike a cookie) and sent with each change in a header.
 */
import { checkToken } from './api-client.js';
import { h } from './dom.js';

/** Where the token is kept for this tab. */
const STORAGE_KEY = 'flagshift-dashboard-token';

/** The page's token, as the controls use it. */
export interface TokenGate {
  readonly root: HTMLElement;
  /** The token the operator gave, or `null` while the controls are locked. */
  token(): string | null;
  /** Locks the controls again after the server refused the token, saying why. */
  refused(message: string): void;
  /** Brings the token field into view and focus (a change was tried while locked). */
  ask(): void;
}

/** Builds the token field and the lock state, starting from the token kept for this tab. */
export function createTokenGate(): TokenGate {
  let token = readStored();
  const input = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'dashboard token',
    'aria-label': 'Dashboard token',
    'data-testid': 'token-input',
  });
  const unlock = h('button', { type: 'submit', className: 'primary', 'data-testid': 'unlock', text: 'Unlock' });
  const lock = h('button', { type: 'button', 'data-testid': 'lock', text: 'Lock' });
  const state = h('span', { 'data-testid': 'token-state' });
  const form = h('form', { className: 'gate-form' }, input, ' ', unlock);
  const root = h('div', { className: 'gate', 'data-testid': 'token-gate' }, state, form, lock);

  function show(text: string, className: string): void {
    const unlocked = token !== null;
    root.dataset['unlocked'] = String(unlocked);
    form.hidden = unlocked;
    lock.hidden = !unlocked;
    state.className = className;
    state.textContent = text;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (candidate === '') {
      show('Paste the dashboard token that flagshift dashboard printed at start.', 'bad');
      return;
    }
    unlock.disabled = true;
    try {
      const answer = await checkToken(candidate);
      if (answer.ok) {
        token = candidate;
        store(candidate);
        input.value = '';
        show('Controls unlocked.', 'ok');
      } else {
        show(answer.message, 'bad');
      }
    } catch (error) {
      show(`Could not reach the dashboard server: ${error}`, 'bad');
    } finally {
      unlock.disabled = false;
    }
  });
  lock.addEventListener('click', () => {
    token = null;
    store(null);
    show('Controls locked.', 'muted');
  });

  function refused(message: string): void {
    token = null;
    store(null);
    show(message, 'bad');
  }

  if (token === null) {
    show('Controls locked:', 'muted');
  } else {
    show('Controls unlocked.', 'ok');
    // A token kept from before a restart of the dashboard (with a new token) would fail only at the next change.
    const kept = token;
    checkToken(kept).then(
      (answer) => {
        if (answer.unauthorized && token === kept) {
          refused('The token kept in this tab no longer works: paste the current one.');
        }
      },
      // Unreachable now: the next change says so, and the status line already does.
      () => undefined,
    );
  }
  return {
    root,
    token: () => token,
    refused,
    ask() {
      input.focus();
    },
  };
}

function readStored(): string | null {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be off (a privacy setting): the token then lasts as long as the page.
    return null;
  }
}

function store(token: string | null): void {
  try {
    if (token === null) window.sessionStorage.removeItem(STORAGE_KEY);
    else window.sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // As in readStored: without storage the token lives in this page only.
  }
}
