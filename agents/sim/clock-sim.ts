import { PetraError } from "../../common/errors";
import type { Cancel, Clock } from "../interfaces";

interface Event {
  atMs: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A binary min-heap of events ordered by time, then by the order they were scheduled in. */
class EventHeap {
  readonly #a: Event[] = [];

  get size(): number {
    return this.#a.length;
  }

  push(e: Event): void {
    const a = this.#a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i] as Event, a[p] as Event)) break;
      [a[i], a[p]] = [a[p] as Event, a[i] as Event];
      i = p;
    }
  }

  pop(): Event | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l] as Event, a[m] as Event)) m = l;
        if (r < a.length && before(a[r] as Event, a[m] as Event)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as Event, a[i] as Event];
        i = m;
      }
    }
    return top;
  }
}

const before = (x: Event, y: Event) => x.atMs < y.atMs || (x.atMs === y.atMs && x.seq < y.seq);

export interface RunOptions {
  /** Stop before the first event later than this (simulated ms). */
  untilMs?: number;
  /** Checked whenever the world is quiet; true ends the run. */
  stopWhen?: () => boolean;
  /** Called after each event with the simulated time (progress bars). */
  onEvent?: (nowMs: number) => void;
}

/**
 * A discrete-event clock. Simulated time stands still while any agent still has work to do (a
 * microtask, or a call into the in-process chain registered with `track`), and jumps to the next
 * scheduled event once everything is quiet. Events at the same time run in the order they were
 * scheduled, so a run is a pure function of its inputs: the same seed gives the same ledger.
 *
 * Agents must not use wall-clock timers (setTimeout) while a simulation runs: the clock cannot
 * see them, and they would make runs depend on the machine's speed.
 */
export class SimClock implements Clock {
  readonly #heap = new EventHeap();
  #now: number;
  #seq = 0;
  #inFlight = 0;
  #idle: (() => void) | undefined;
  #events = 0;

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  /**
   * Whole milliseconds, as Date.now() gives them (envelopes and records carry integer times);
   * events keep sub-millisecond precision for their order.
   */
  now(): number {
    return Math.floor(this.#now);
  }

  /** Events run so far (a cost measure for benchmarks). */
  get eventsRun(): number {
    return this.#events;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(this.#now + Math.max(0, ms), resolve));
  }

  schedule(atMs: number, fn: () => void): Cancel {
    if (!Number.isFinite(atMs)) throw new PetraError("INVALID_ARGUMENT", `atMs: must be finite, got ${atMs}`);
    const e: Event = { atMs: Math.max(atMs, this.#now), seq: this.#seq++, fn, cancelled: false };
    this.#heap.push(e);
    return {
      cancel: () => {
        e.cancelled = true;
      },
    };
  }

  /**
   * Registers real asynchronous work (a call into the in-process chain) that the clock must wait
   * for before it advances: its completion is part of the present, not of the future.
   */
  track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight++;
    const done = () => {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#idle?.();
    };
    work.then(done, done);
    return work;
  }

  /** Runs events until none is left, `untilMs` is reached or `stopWhen` says so. */
  async run(opts: RunOptions = {}): Promise<void> {
    const until = opts.untilMs ?? Number.POSITIVE_INFINITY;
    for (;;) {
      await this.#quiet();
      if (opts.stopWhen?.()) return;
      const e = this.#next();
      if (!e) return;
      if (e.atMs > until) {
        this.#heap.push(e);
        this.#now = Math.max(this.#now, until);
        return;
      }
      this.#now = e.atMs;
      this.#events++;
      e.fn();
      opts.onEvent?.(this.#now);
    }
  }

  /**
   * Runs events until `work` settles and returns its result. Fails, naming `what`, if the world
   * goes quiet first (nothing left could ever finish it) or `untilMs` is reached.
   */
  async runUntil<T>(work: Promise<T>, what: string, untilMs?: number): Promise<T> {
    let settled = false;
    work.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await this.run({ stopWhen: () => settled, untilMs });
    if (!settled)
      throw new PetraError("PROCESS_FAILED", `simulation: ${what} did not finish (no events left at ${this.now()} ms)`);
    return work;
  }

  #next(): Event | undefined {
    for (;;) {
      const e = this.#heap.pop();
      if (!e?.cancelled) return e;
    }
  }

  /** Resolves once no tracked work is in flight and every microtask it caused has run. */
  async #quiet(): Promise<void> {
    for (;;) {
      if (this.#inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
        this.#idle = undefined;
        continue;
      }
      // A macrotask boundary: every microtask queued so far (and those they queue) has run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#inFlight === 0) return;
    }
  }
}
