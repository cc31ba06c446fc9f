import type { Cancel, Clock } from "./interfaces";

/** setTimeout silently fires at once beyond this delay (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Wall time: milliseconds since the epoch. The only Clock that may read Date.now(). */
export class LiveClock implements Clock {
  now(): number {
    return Date.now();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.schedule(this.now() + ms, resolve);
    });
  }

  schedule(atMs: number, fn: () => void): Cancel {
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      if (cancelled) return;
      const waitMs = atMs - this.now();
      if (waitMs <= 0) {
        // Even an overdue task runs asynchronously, so callers see one ordering in both clocks.
        timer = setTimeout(fn, 0);
        return;
      }
      timer = setTimeout(arm, Math.min(waitMs, MAX_TIMER_MS));
    };
    arm();
    return {
      cancel: () => {
        cancelled = true;
        if (timer) clearTimeout(timer);
      },
    };
  }
}
