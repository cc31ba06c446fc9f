import {
  escrowOf,
  LogCursor,
  type LogPosition,
  type MarketEvent,
  type ReadonlyMarketState,
  type ReplayedAsset,
  type ReplayedOffer,
  settleAccepted,
  ZERO_ADDRESS,
} from "../attacks/market-replay";
import { check } from "../common/errors";
import type { MarketView } from "./market-view";

/**
 * How far (in blocks) a view may fall behind the book before it stops holding back pruning. A
 * watching household is a link delay behind, a block or two; only one that stopped watching (its
 * day is over) falls this far, and its closed offers would otherwise be kept to the end of the run.
 */
export const DEFAULT_MAX_LAG_BLOCKS = 1024;

const OPEN = Number.POSITIVE_INFINITY;

/** An offer as the book keeps it: what every view sees of it, and the blocks it was open in. */
interface OfferRecord {
  readonly id: bigint;
  /** One frozen object for every view: an open offer never changes. */
  readonly offer: ReplayedOffer;
  /** The offered asset as every household but its owner sees it while the offer is open. */
  readonly asset: ReplayedAsset;
  readonly postedIn: number;
  /** The block that accepted or rescinded it; OPEN until then. */
  closedIn: number;
}

/** What the book still needs of a live asset: who owns it, and its shape for when it is offered. */
interface AssetRecord {
  readonly owner: string;
  readonly powerW: bigint;
  readonly start: bigint;
  readonly end: bigint;
}

/** An event for one household's view, with the offer it posts or closes as the book resolved it. */
interface Entry {
  /** Chain order across the whole book: what a view sorts events it learns late by. */
  readonly seq: number;
  readonly block: number;
  readonly ev: MarketEvent;
  readonly offer?: OfferRecord;
}

const isOpenAt = (r: OfferRecord, block: number): boolean => r.postedIn <= block && r.closedIn > block;

/** What a view asks of its book: closures over the book's private state. */
interface BookAccess {
  head(): number;
  offer(id: bigint, at: number): ReplayedOffer | undefined;
  offeredAsset(id: bigint, at: number): ReplayedAsset | undefined;
  openOffers(at: number): readonly OfferRecord[];
  register(address: string, view: BookView): void;
}

/**
 * The market of every household of one process (simulated mode), rebuilt from the logs once per
 * block instead of once per household and block. A household's view then costs only its own
 * events: a thousand views each applying every log was the largest single cost of a simulated day.
 *
 * The book runs ahead of its views: it must be fed each block, whole and in chain order, before
 * any view is handed that block's logs (simulated mode feeds it as the node seals a block, and
 * delivers to households after a link delay). Households see the market at different blocks, so
 * the book keeps every offer with the blocks it was open in, and each view reads the offers open
 * at its own position. Events about a household's addresses are routed to its view as the book
 * applies them, and the view applies them when it reaches their block.
 *
 * Memory stays bounded over a day: a closed offer is forgotten once every view is past the block
 * that closed it, an asset once it is traded or deposited (it can never be offered again; the
 * offers that still show it to a lagging view keep their own copy). A view more than `maxLagBlocks`
 * behind (its household stopped watching) no longer holds pruning back.
 */
export class SharedMarketBook {
  readonly #cursor = new LogCursor();
  /** The last block applied, whole. */
  #head = -1;
  #seq = 0;
  readonly #maxLag: number;
  readonly #assets = new Map<bigint, AssetRecord>();
  /** Offers open at some view's position or later, in the order they were posted. */
  readonly #offers = new Map<bigint, OfferRecord>();
  /** The offers of each asset still kept: a rescinded asset may be offered again. */
  readonly #offersOf = new Map<bigint, OfferRecord[]>();
  /** Closed offers in the order they closed, for pruning; entries before #closedFrom are gone. */
  #closed: OfferRecord[] = [];
  #closedFrom = 0;
  readonly #views: BookView[] = [];
  readonly #owners = new Map<string, BookView>();
  /**
   * Events about addresses no view has registered yet, by address. A household registers a
   * pseudonym when its view next applies logs, which may be after the book applied the mint to it.
   */
  readonly #orphans = new Map<string, Entry[]>();
  /** The open offers at a block, built once for all the views there. */
  readonly #openAt = new Map<number, readonly OfferRecord[]>();
  readonly #access: BookAccess;

  constructor(opts: { maxLagBlocks?: number } = {}) {
    const maxLag = opts.maxLagBlocks ?? DEFAULT_MAX_LAG_BLOCKS;
    check(Number.isInteger(maxLag) && maxLag >= 1, "maxLagBlocks", `must be a positive integer, got ${maxLag}`);
    this.#maxLag = maxLag;
    this.#access = {
      head: () => this.#head,
      offer: (id, at) => {
        const r = this.#offers.get(id);
        return r !== undefined && isOpenAt(r, at) ? r.offer : undefined;
      },
      offeredAsset: (id, at) => {
        const rs = this.#offersOf.get(id);
        if (rs === undefined) return undefined;
        for (let i = rs.length - 1; i >= 0; i--) {
          const r = rs[i] as OfferRecord;
          if (isOpenAt(r, at)) return r.asset;
        }
        return undefined;
      },
      openOffers: (at) => {
        let open = this.#openAt.get(at);
        if (open === undefined) {
          // Fixed once the book is past `at`: later blocks neither post nor close offers at it.
          open = [...this.#offers.values()].filter((r) => isOpenAt(r, at));
          this.#openAt.set(at, open);
        }
        return open;
      },
      register: (address, view) => this.#register(address, view),
    };
  }

  /** The last block applied. */
  get head(): number {
    return this.#head;
  }

  /** What the book holds (a measure of its memory). */
  get size(): { assets: number; offers: number; orphans: number; addresses: number } {
    let orphans = 0;
    for (const es of this.#orphans.values()) orphans += es.length;
    return { assets: this.#assets.size, offers: this.#offers.size, orphans, addresses: this.#owners.size };
  }

  /**
   * A household's view of the market. `addresses` is the household's set of pseudonyms, which may
   * only grow: an address must be in it before the view applies the block of the first event
   * about it (a prosumer adds a pseudonym before it asks the DSO to mint to it).
   */
  view(addresses: ReadonlySet<string>): MarketView {
    const v = new BookView(this.#access, addresses);
    this.#views.push(v);
    return v;
  }

  /** Applies the logs after the last one applied. Each call must end with a whole block. */
  apply<L extends LogPosition>(logs: Iterable<L>, decode: (log: L) => MarketEvent | undefined): void {
    let last = -1;
    for (const log of logs) {
      if (!this.#cursor.take(log)) continue;
      last = log.blockNumber;
      const ev = decode(log);
      if (ev !== undefined) this.#applyOne(ev, log.blockNumber);
    }
    if (last < 0) return;
    this.#head = last;
    this.#prune();
  }

  #route(entry: Entry, address: string): void {
    const view = this.#owners.get(address);
    if (view !== undefined) {
      view.receive(entry);
      return;
    }
    const orphans = this.#orphans.get(address);
    if (orphans === undefined) this.#orphans.set(address, [entry]);
    else orphans.push(entry);
  }

  #register(address: string, view: BookView): void {
    const owner = this.#owners.get(address);
    if (owner === view) return;
    if (owner !== undefined) throw new Error(`market book: ${address} is registered by two households`);
    this.#owners.set(address, view);
    const orphans = this.#orphans.get(address);
    if (orphans !== undefined) {
      this.#orphans.delete(address);
      view.claim(orphans);
    }
  }

  #open(offerID: bigint, why: string): OfferRecord {
    const r = this.#offers.get(offerID);
    if (r === undefined || r.closedIn !== OPEN) throw new Error(`market book: ${why} an offer not open: ${offerID}`);
    return r;
  }

  #close(r: OfferRecord, block: number): void {
    r.closedIn = block;
    this.#closed.push(r);
  }

  #applyOne(ev: MarketEvent, block: number): void {
    const seq = this.#seq++;
    switch (ev.name) {
      case "AssetAdded":
      case "AssetSplit": {
        const owner = ev.name === "AssetAdded" ? ev.anonAddress : ev.owner;
        this.#assets.set(ev.assetID, { owner, powerW: ev.powerW, start: ev.start, end: ev.end });
        this.#route({ seq, block, ev }, owner);
        return;
      }
      case "FinancialAdded":
      case "FinancialDeposited":
        this.#route({ seq, block, ev }, ev.anonAddress);
        return;
      case "OfferPosted": {
        const a = this.#assets.get(ev.assetID);
        if (a === undefined) throw new Error(`market book: an offer for unknown asset ${ev.assetID}`);
        const r: OfferRecord = {
          id: ev.offerID,
          offer: Object.freeze({
            poster: a.owner,
            assetID: ev.assetID,
            priceMicroPerWInterval: ev.priceMicroPerWInterval,
            state: "Open" as const,
          }),
          asset: Object.freeze({ owner: a.owner, powerW: a.powerW, start: a.start, end: a.end, locked: true }),
          postedIn: block,
          closedIn: OPEN,
        };
        this.#offers.set(ev.offerID, r);
        const rs = this.#offersOf.get(ev.assetID);
        if (rs === undefined) this.#offersOf.set(ev.assetID, [r]);
        else rs.push(r);
        this.#route({ seq, block, ev, offer: r }, a.owner);
        return;
      }
      case "OfferRescinded": {
        const r = this.#open(ev.offerID, "rescinded");
        this.#close(r, block);
        this.#route({ seq, block, ev, offer: r }, r.offer.poster);
        return;
      }
      case "OfferAccepted": {
        const r = this.#open(ev.offerID, "accepted");
        this.#close(r, block);
        const entry: Entry = { seq, block, ev, offer: r };
        this.#route(entry, r.offer.poster);
        const b = this.#assets.get(ev.assetID);
        if (b !== undefined) this.#route(entry, b.owner);
        this.#assets.delete(r.offer.assetID);
        this.#assets.delete(ev.assetID);
        return;
      }
      case "AssetDeposited": {
        const a = this.#assets.get(ev.assetID);
        if (a !== undefined) this.#route({ seq, block, ev }, a.owner);
        this.#assets.delete(ev.assetID);
        return;
      }
      case "MinterSet":
      case "GasFunded":
        return;
      default: {
        const unreachable: never = ev;
        throw new Error(`market book: unhandled event ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Forgets what no view can read any more: offers, unclaimed events and open-offer lists at or before every view. */
  #prune(): void {
    const floor = this.#head - this.#maxLag;
    let horizon = this.#head;
    for (const v of this.#views) {
      const at = v.block;
      if (at >= floor && at < horizon) horizon = at;
    }
    const closed = this.#closed;
    let i = this.#closedFrom;
    for (; i < closed.length; i++) {
      const r = closed[i] as OfferRecord;
      if (r.closedIn > horizon) break;
      this.#offers.delete(r.id);
      const rs = this.#offersOf.get(r.offer.assetID);
      if (rs !== undefined) {
        const left = rs.filter((x) => x !== r);
        if (left.length === 0) this.#offersOf.delete(r.offer.assetID);
        else this.#offersOf.set(r.offer.assetID, left);
      }
    }
    this.#closedFrom = i;
    if (i > 1024 && i * 2 > closed.length) {
      this.#closed = closed.slice(i);
      this.#closedFrom = 0;
    }
    // An unclaimed event at or before every view's block has no owner to come: a household
    // registers an address before its own view applies the first event about it.
    for (const [address, es] of this.#orphans) {
      const left = es.filter((e) => e.block > horizon);
      if (left.length === 0) this.#orphans.delete(address);
      else if (left.length < es.length) this.#orphans.set(address, left);
    }
    for (const at of this.#openAt.keys()) if (at < horizon) this.#openAt.delete(at);
  }
}

/** Entries as a read-only map, for market states whose maps are computed views. */
class ComputedMap<K, V> implements ReadonlyMap<K, V> {
  readonly #get: (key: K) => V | undefined;
  readonly #entries: () => [K, V][];

  constructor(get: (key: K) => V | undefined, entries: () => [K, V][]) {
    this.#get = get;
    this.#entries = entries;
  }

  get(key: K): V | undefined {
    return this.#get(key);
  }

  has(key: K): boolean {
    return this.#get(key) !== undefined;
  }

  get size(): number {
    return this.#entries().length;
  }

  entries(): MapIterator<[K, V]> {
    return this.#entries().values();
  }

  keys(): MapIterator<K> {
    return this.#entries()
      .map(([k]) => k)
      .values();
  }

  values(): MapIterator<V> {
    return this.#entries()
      .map(([, v]) => v)
      .values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.#entries()) fn.call(thisArg, v, k, this);
  }
}

/**
 * One household's view on a SharedMarketBook: what HouseholdMarketView gives, at the cost of the
 * household's own events. Its own assets and balances are its own (the prosumer and its strategy
 * read and the view updates them as before); every open offer, and another household's asset while
 * on offer, is the book's, as of the last block the view applied.
 */
class BookView implements MarketView {
  readonly state: ReadonlyMarketState;
  readonly #book: BookAccess;
  readonly #addresses: ReadonlySet<string>;
  #registered = 0;
  readonly #own = new Map<bigint, ReplayedAsset>();
  readonly #balances = new Map<string, bigint>();
  /** Events about the household's addresses the book applied and this view has not, in chain order. */
  #inbox: Entry[] = [];
  #lastSeq = -1;
  readonly #cursor = new LogCursor();
  #block = -1;

  constructor(book: BookAccess, addresses: ReadonlySet<string>) {
    this.#book = book;
    this.#addresses = addresses;
    const offers = new ComputedMap<bigint, ReplayedOffer>(
      (id) => book.offer(id, this.#block),
      () => book.openOffers(this.#block).map((r) => [r.id, r.offer]),
    );
    const assets = new ComputedMap<bigint, ReplayedAsset>(
      (id) => this.#own.get(id) ?? book.offeredAsset(id, this.#block),
      () => {
        const all = [...this.#own];
        for (const r of book.openOffers(this.#block))
          if (!this.#own.has(r.offer.assetID)) all.push([r.offer.assetID, r.asset]);
        return all;
      },
    );
    this.state = { assets, offers, balances: this.#balances };
  }

  /** The last log applied, or undefined before the first. */
  get position(): LogPosition | undefined {
    return this.#cursor.position;
  }

  /** The last block applied; -1 before the first. */
  get block(): number {
    return this.#block;
  }

  /**
   * Moves the view to the last of `logs` if it is new, applying the household's own events up to
   * the end of its block (a view moves by whole blocks, as the book applies them); returns them.
   * The logs themselves are not read (the book applied them), nor decoded.
   */
  apply<L extends LogPosition>(logs: readonly L[], _decode: (log: L) => MarketEvent | undefined): MarketEvent[] {
    this.#register();
    const last = logs[logs.length - 1];
    if (last === undefined) return [];
    if (last.blockNumber > this.#book.head())
      throw new Error(
        `market book: a view got block ${last.blockNumber} before the book (at ${this.#book.head()}): feed the book first`,
      );
    if (!this.#cursor.take(last)) return [];
    const to = last.blockNumber;
    const inbox = this.#inbox;
    let n = 0;
    while (n < inbox.length && (inbox[n] as Entry).block <= to) n++;
    const due = inbox.splice(0, n);
    for (const e of due) this.#applyOne(e);
    this.#block = to;
    return due.map((e) => e.ev);
  }

  /** From the book: an event about one of the household's addresses (one event may concern two). */
  receive(e: Entry): void {
    if (e.seq === this.#lastSeq) return;
    this.#lastSeq = e.seq;
    this.#inbox.push(e);
  }

  /** From the book: events about an address of the household that it applied before the address was registered. */
  claim(es: readonly Entry[]): void {
    for (const e of es)
      if (e.block <= this.#block)
        throw new Error(`market book: an address was registered after the view applied block ${e.block} about it`);
    const all = [...this.#inbox, ...es].sort((x, y) => x.seq - y.seq);
    this.#inbox = all.filter((e, i) => i === 0 || e.seq !== (all[i - 1] as Entry).seq);
    this.#lastSeq = Math.max(this.#lastSeq, ...es.map((e) => e.seq));
  }

  /** Registers the addresses added to the household's set since the last call (it only grows, in order). */
  #register(): void {
    const addresses = this.#addresses;
    if (addresses.size === this.#registered) return;
    if (addresses.size < this.#registered) throw new Error("market book: a household's addresses may only grow");
    let i = 0;
    for (const address of addresses) if (i++ >= this.#registered) this.#book.register(address, this);
    this.#registered = addresses.size;
  }

  #add(who: string, amount: bigint): void {
    if (!this.#addresses.has(who)) return;
    const balance = (this.#balances.get(who) ?? 0n) + amount;
    if (balance === 0n) this.#balances.delete(who);
    else this.#balances.set(who, balance);
  }

  /** As HouseholdMarketView applies an event, for the household's own assets and balances. */
  #applyOne(e: Entry): void {
    const own = this.#own;
    const ev = e.ev;
    switch (ev.name) {
      case "AssetAdded":
      case "AssetSplit": {
        const owner = ev.name === "AssetAdded" ? ev.anonAddress : ev.owner;
        if (this.#addresses.has(owner))
          own.set(ev.assetID, { owner, powerW: ev.powerW, start: ev.start, end: ev.end, locked: false });
        return;
      }
      case "FinancialAdded":
        this.#add(ev.anonAddress, ev.amount);
        return;
      case "FinancialDeposited":
        this.#add(ev.anonAddress, -ev.amount);
        return;
      case "OfferPosted": {
        const a = own.get(ev.assetID);
        if (a === undefined) throw new Error(`market view: an offer for unknown asset ${ev.assetID}`);
        a.locked = true;
        if (a.powerW < 0n) this.#add(a.owner, -escrowOf(ev.priceMicroPerWInterval, a));
        return;
      }
      case "OfferRescinded": {
        const r = e.offer as OfferRecord;
        const o = r.offer;
        const mine = own.get(o.assetID);
        if (mine !== undefined) mine.locked = false;
        const a = mine ?? r.asset;
        if (a.powerW < 0n) this.#add(o.poster, escrowOf(o.priceMicroPerWInterval, a));
        return;
      }
      case "OfferAccepted": {
        const r = e.offer as OfferRecord;
        const o = r.offer;
        const mine = own.get(o.assetID);
        const a = mine ?? r.asset;
        // The accepting asset: ours if we hold it; anyone else's balance is not kept.
        const b = own.get(ev.assetID);
        const bOwner = b?.owner ?? ZERO_ADDRESS;
        settleAccepted((who, amount) => this.#add(who, amount), o, a, bOwner, ev.payment);
        // Retired: what a holder of the object sees.
        if (mine !== undefined) {
          mine.owner = ZERO_ADDRESS;
          mine.locked = false;
        }
        if (b !== undefined) b.owner = ZERO_ADDRESS;
        own.delete(o.assetID);
        own.delete(ev.assetID);
        return;
      }
      case "AssetDeposited": {
        const a = own.get(ev.assetID);
        if (a !== undefined) a.owner = ZERO_ADDRESS;
        own.delete(ev.assetID);
        return;
      }
      case "MinterSet":
      case "GasFunded":
        return;
      default: {
        const unreachable: never = ev;
        throw new Error(`market view: unhandled event ${JSON.stringify(unreachable)}`);
      }
    }
  }
}
