/**
 * Runs a refresh now and then every interval, one at a time: a refresh asked for while one
 * runs (a change just made) runs right after it instead of overlapping it.
 */

/** A running {@link createPoller}. */
export interface Poller {
  /** Refreshes now, or right after the refresh under way. */
  refreshNow(): void;
}

/**
 * Starts polling: `refresh` runs at once, then `intervalMs` after each run ends. `refresh`
 * handles its own failures; polling goes on regardless.
 */
export function createPoller(refresh: () => Promise<void>, intervalMs: number): Poller {
  let timer: number | undefined;
  let polling = false;
  let again = false;

  async function poll(): Promise<void> {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    window.clearTimeout(timer);
    try {
      await refresh();
    } finally {
      polling = false;
      if (again) {
        again = false;
        void poll();
      } else {
        timer = window.setTimeout(poll, intervalMs);
      }
    }
  }

  void poll();
  return { refreshNow: () => void poll() };
}
