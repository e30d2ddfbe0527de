/**
 * A ledger of writes under faults. Each key is written by one client at a time, in order;
 * the ledger keeps, per key, every state the row may be in given what callers were told:
 * an acknowledged write certainly happened (and its result says what it found), a failed
 * one may or may not have happened (a connection killed after COMMIT but before the reply
 * leaves the write in doubt). A read, or the final table, outside that set is a lost or
 * phantom write.
 */

/** A row's logical state: `undefined` when the row doesn't exist. */
export type RowState<E> = E | undefined;

/** A write, and the result its caller got back when it was acknowledged. */
export type LedgerWrite<E> =
  | { readonly op: 'insert'; readonly entity: E }
  | { readonly op: 'upsert'; readonly entity: E }
  | { readonly op: 'update'; readonly patch: Partial<E>; readonly found?: boolean }
  | { readonly op: 'delete'; readonly found?: boolean };

/** What went wrong with one key. */
export interface LedgerViolation {
  readonly key: string;
  readonly invariant: string;
  readonly detail: string;
}

/** Counts of what the ledger saw. */
export interface LedgerCounts {
  readonly acknowledged: number;
  readonly failed: number;
  readonly reads: number;
}

/** Tracks possible states per key. `fingerprint` must map equal states to equal strings. */
export class WriteLedger<E extends object> {
  readonly #states = new Map<string, RowState<E>[]>();
  readonly #fingerprint: (state: RowState<E>) => string;
  readonly violations: LedgerViolation[] = [];
  #acknowledged = 0;
  #failed = 0;
  #reads = 0;

  constructor(fingerprint: (state: E) => string) {
    this.#fingerprint = (state) => (state === undefined ? '<absent>' : fingerprint(state));
  }

  get counts(): LedgerCounts {
    return { acknowledged: this.#acknowledged, failed: this.#failed, reads: this.#reads };
  }

  /** The keys seen so far. */
  keys(): string[] {
    return [...this.#states.keys()];
  }

  /** The states `key` may be in now. */
  possible(key: string): readonly RowState<E>[] {
    return this.#states.get(key) ?? [undefined];
  }

  /** Declares the state of a key written before the ledger began; ignored once the key is known. */
  assume(key: string, state: RowState<E>): void {
    if (!this.#states.has(key)) this.#set(key, [state]);
  }

  /** Records a write the caller saw acknowledged (`found` set for update and delete). */
  acknowledged(key: string, write: LedgerWrite<E>): void {
    this.#acknowledged++;
    const before = this.possible(key);
    const consistent = before.filter((state) => {
      if (write.op === 'insert') return state === undefined;
      if (write.op === 'update' || write.op === 'delete') return (state !== undefined) === write.found;
      return true;
    });
    if (consistent.length === 0) {
      this.violations.push({
        key,
        invariant: 'an acknowledged write finds the row as earlier writes left it',
        detail: `${describeWrite(write)} was acknowledged, but no earlier write can have left the row so; possible states: ${this.#show(before)}`,
      });
      this.#set(key, this.#unique(before.map((state) => apply(write, state))));
      return;
    }
    this.#set(key, this.#unique(consistent.map((state) => apply(write, state))));
  }

  /** Records a write whose caller got an error: it may or may not have happened. */
  failed(key: string, write: LedgerWrite<E>): void {
    this.#failed++;
    const before = this.possible(key);
    const after = before.map((state) => (write.op === 'insert' && state !== undefined ? state : apply(write, state)));
    this.#set(key, this.#unique([...before, ...after]));
  }

  /** Records a successful read: it must show a possible state, and from then on the row is in it. */
  read(key: string, observed: RowState<E>, context = 'read'): void {
    this.#reads++;
    this.#check(key, observed, `a ${context} returns the last acknowledged write (or a later write in doubt)`);
  }

  /** Checks the final state of `key`; records a violation when it is impossible. */
  final(key: string, observed: RowState<E>): void {
    this.#check(key, observed, 'every acknowledged write is in the final table (zero lost writes)');
  }

  #check(key: string, observed: RowState<E>, invariant: string): void {
    const before = this.possible(key);
    const seen = this.#fingerprint(observed);
    if (before.some((state) => this.#fingerprint(state) === seen)) {
      this.#set(key, [observed]);
      return;
    }
    this.violations.push({
      key,
      invariant,
      detail: `observed ${seen}, possible: ${this.#show(before)}`,
    });
    this.#set(key, [observed]);
  }

  #set(key: string, states: RowState<E>[]): void {
    this.#states.set(key, states);
  }

  #unique(states: RowState<E>[]): RowState<E>[] {
    const seen = new Map<string, RowState<E>>();
    for (const state of states) seen.set(this.#fingerprint(state), state);
    return [...seen.values()];
  }

  #show(states: readonly RowState<E>[]): string {
    return states.map((state) => this.#fingerprint(state)).join(' | ');
  }
}

function apply<E extends object>(write: LedgerWrite<E>, state: RowState<E>): RowState<E> {
  switch (write.op) {
    case 'insert':
    case 'upsert':
      return write.entity;
    case 'update':
      return state === undefined ? undefined : { ...state, ...write.patch };
    case 'delete':
      return undefined;
  }
}

function describeWrite<E>(write: LedgerWrite<E>): string {
  return JSON.stringify(write);
}
