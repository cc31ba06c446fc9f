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

  peek(): Event | undefined {
    return this.#a[0];
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
 * microtask, or a call into the chain registered with `track`), and jumps to the next scheduled
 * event once everything is quiet. Events at the same time run in the order they were scheduled,
 * so a run is a pure function of its inputs: the same seed gives the same ledger.
 *
 * Work tracked with a horizon (a chain call whose answer is due at a simulated time fixed when it
 * was made) holds back only the events at or after that time: the clock runs the events before
 * it, so agents' code runs while the chain (another thread, or another process) executes. The
 * answer's continuation must schedule its event at the horizon, which the clock has not passed.
 *
 * Agents must not use wall-clock timers (setTimeout) while a simulation runs: the clock cannot
 * see them, and they would make runs depend on the machine's speed.
 */
export class SimClock implements Clock {
  readonly #heap = new EventHeap();
  #now: number;
  #seq = 0;
  /** Horizons of the tracked work in flight (the present, for work without one), by count. */
  readonly #pending = new Map<number, number>();
  /** Tracked work settled since the run loop last let microtasks drain. */
  #settled = 0;
  #wake: (() => void) | undefined;
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

  /** The simulated time with its fraction (for horizons computed from drawn delays). */
  nowExact(): number {
    return this.#now;
  }

  /** Events run so far (a cost measure for benchmarks). */
  get eventsRun(): number {
    return this.#events;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(this.#now + Math.max(0, ms), resolve));
  }

  /** Resolves at simulated time `atMs` (at once, in event order, if that is now or past). */
  sleepUntil(atMs: number): Promise<void> {
    return new Promise((resolve) => this.schedule(atMs, resolve));
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
   * Registers real asynchronous work (a call into the chain) that the clock must wait for before
   * it runs any event at or after `horizonMs` (default: now, so before any further event).
   */
  track<T>(work: Promise<T>, horizonMs?: number): Promise<T> {
    const h = horizonMs === undefined ? this.#now : Math.max(this.#now, horizonMs);
    this.#pending.set(h, (this.#pending.get(h) ?? 0) + 1);
    const done = () => {
      const n = (this.#pending.get(h) ?? 1) - 1;
      if (n === 0) this.#pending.delete(h);
      else this.#pending.set(h, n);
      this.#settled++;
      this.#wake?.();
    };
    work.then(done, done);
    return work;
  }

  /** Runs events until none is left, `untilMs` is reached or `stopWhen` says so. */
  async run(opts: RunOptions = {}): Promise<void> {
    const until = opts.untilMs ?? Number.POSITIVE_INFINITY;
    for (;;) {
      await this.#drain();
      if (opts.stopWhen?.()) return;
      const e = this.#peek();
      const horizon = this.#horizon();
      // Work due before the next event (or with no event left, any work: its answer may schedule
      // one) must be in first.
      if (horizon !== undefined && (e === undefined || e.atMs >= horizon)) {
        await this.#settlement();
        continue;
      }
      if (!e) return;
      if (e.atMs > until) {
        this.#now = Math.max(this.#now, until);
        return;
      }
      this.#heap.pop();
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

  /** The next event that is not cancelled, left in the heap. */
  #peek(): Event | undefined {
    for (;;) {
      const e = this.#heap.peek();
      if (e === undefined || !e.cancelled) return e;
      this.#heap.pop();
    }
  }

  /** The earliest horizon of the work in flight, if any. */
  #horizon(): number | undefined {
    let min: number | undefined;
    for (const h of this.#pending.keys()) if (min === undefined || h < min) min = h;
    return min;
  }

  /** Resolves when some tracked work settles (at once if some did since the last drain). */
  async #settlement(): Promise<void> {
    if (this.#settled > 0) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#wake = undefined;
  }

  /**
   * A macrotask boundary, repeated until no tracked work settled during it: every microtask
   * queued so far, the continuations of settled work among them, has run and scheduled its events.
   */
  async #drain(): Promise<void> {
    do {
      this.#settled = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    } while (this.#settled > 0);
  }
}
