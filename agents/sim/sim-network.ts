import { check } from "../../common/errors";
import type { Rng } from "../../common/rng";
import type { Clock, DealerSocket, MessageSockets, RouterSocket } from "../interfaces";
import type { Delay } from "./distribution";

/** An async-iterable queue of messages: what a socket's `for await` reads. */
class Inbox implements AsyncIterable<Uint8Array[]> {
  readonly #queue: Uint8Array[][] = [];
  #waiting: ((r: IteratorResult<Uint8Array[]>) => void) | undefined;
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  push(frames: Uint8Array[]): void {
    if (this.#closed) return;
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      w({ value: frames, done: false });
    } else this.#queue.push(frames);
  }

  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array[]> {
    return {
      next: () => {
        const m = this.#queue.shift();
        if (m) return Promise.resolve({ value: m, done: false });
        if (this.#closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.#waiting = resolve;
        });
      },
    };
  }
}

/**
 * In-memory message sockets for simulated mode: a ROUTER and DEALERs with ZeroMQ's framing
 * ([routing id, frame] at the router), whose deliveries the simulated clock schedules after a
 * one-way delay drawn per connection. Each connection keeps its order, as TCP does.
 */
export class SimSockets implements MessageSockets {
  readonly #clock: Clock;
  readonly #roundTrip: Delay;
  readonly #rngFor: (identity: string) => Rng;
  readonly #routers = new Map<string, { inbox: Inbox; dealers: Map<string, Inbox> }>();
  /** Router -> dealer direction of each connection, by routing id. */
  readonly #downLinks = new Map<string, { rng: Rng; lastAt: number }>();
  #connections = 0;
  #messages = 0;

  constructor(opts: { clock: Clock; roundTrip: Delay; rngFor: (identity: string) => Rng }) {
    this.#clock = opts.clock;
    this.#roundTrip = opts.roundTrip;
    this.#rngFor = opts.rngFor;
  }

  get messagesDelivered(): number {
    return this.#messages;
  }

  async bindRouter(endpoint: string): Promise<RouterSocket> {
    check(!this.#routers.has(endpoint), "endpoint", `${endpoint} is already bound`);
    const entry = { inbox: new Inbox(), dealers: new Map<string, Inbox>() };
    this.#routers.set(endpoint, entry);
    return {
      endpoint,
      get closed() {
        return entry.inbox.closed;
      },
      send: async ([id, ...frames]) => {
        if (!id) return;
        const key = Buffer.from(id).toString("latin1");
        const dealer = entry.dealers.get(key);
        // ROUTER semantics: a message to an unknown or gone peer is dropped silently.
        if (!dealer) return;
        const link = this.#downLinks.get(key);
        if (link) this.#deliver(link, () => dealer.push(frames));
      },
      close: () => {
        entry.inbox.close();
        this.#routers.delete(endpoint);
      },
      [Symbol.asyncIterator]: () => entry.inbox[Symbol.asyncIterator](),
    };
  }

  connectDealer(endpoint: string, identity: string): DealerSocket {
    const routingId = `${identity}#${this.#connections++}`;
    const inbox = new Inbox();
    const up = { rng: this.#rngFor(identity), lastAt: 0 };
    const down = { rng: up.rng, lastAt: 0 };
    let registered = false;
    const register = () => {
      const r = this.#routers.get(endpoint);
      if (!r || registered) return r;
      r.dealers.set(routingId, inbox);
      registered = true;
      return r;
    };
    this.#downLinks.set(routingId, down);
    return {
      send: async (frame) => {
        const r = register();
        // Like ZeroMQ before the peer is up, a message to an unbound endpoint waits; here it is dropped
        // and the DSO client's retry covers it.
        if (!r) return;
        this.#deliver(up, () => r.inbox.push([Buffer.from(routingId, "latin1"), frame]));
      },
      close: () => {
        inbox.close();
        this.#routers.get(endpoint)?.dealers.delete(routingId);
        this.#downLinks.delete(routingId);
      },
      [Symbol.asyncIterator]: () => inbox[Symbol.asyncIterator](),
    };
  }

  #deliver(link: { rng: Rng; lastAt: number }, push: () => void): void {
    const at = Math.max(this.#clock.now() + this.#roundTrip.sample(link.rng) / 2, link.lastAt);
    link.lastAt = at;
    this.#clock.schedule(at, () => {
      this.#messages++;
      push();
    });
  }
}
