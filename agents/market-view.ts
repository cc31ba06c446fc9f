import {
  costOf,
  LogCursor,
  type LogPosition,
  type MarketEvent,
  type MarketState,
  type ReadonlyMarketState,
  type ReplayedAsset,
  type ReplayedOffer,
  ZERO_ADDRESS,
} from "../attacks/market-replay";

/**
 * The market as one household reads it, kept up to date from the market's logs: a
 * HouseholdMarketView of its own (live mode), or a view on a book shared by every household of a
 * process (simulated mode, agents/market-book.ts).
 */
export interface MarketView {
  readonly state: ReadonlyMarketState;
  /** The last log applied, or undefined before the first. */
  readonly position: LogPosition | undefined;
  /**
   * Applies the logs after the last one applied (decoded by `decode` where the view reads them);
   * returns the events applied, in chain order: at least every event about the household's own
   * addresses.
   */
  apply<L extends LogPosition>(logs: readonly L[], decode: (log: L) => MarketEvent | undefined): MarketEvent[];
}

/** What an asset was created with (AssetAdded, or AssetSplit after a trade): its data never changes. */
export type AssetCreation = Extract<MarketEvent, { name: "AssetAdded" | "AssetSplit" }>;

/**
 * Assets by id as created, from the market's logs. One registry can serve every household of a
 * process (simulated mode): each view registers the assets its household owns as their creation
 * arrives, and looks an asset up only when an offer of it arrives, which its owner could send only
 * after its own view had applied the creation. So a shared registry answers exactly what a
 * registry of its own would, provided it is shared by the views of every household that trades
 * (a simulation's are all in one process); the other views skip other households' creations.
 */
export type AssetRegistry = Map<bigint, AssetCreation>;

/**
 * An offer as posted, one object per OfferPosted event, shared by every view that applies it: an
 * open offer never changes (a view drops it when it is accepted or rescinded), and a thousand
 * households would otherwise each allocate their own copy of every offer.
 */
const OFFERS = new WeakMap<MarketEvent, ReplayedOffer>();

/**
 * Another household's asset as every view that did not own it sees it while it is on offer (by
 * the OfferPosted event), and after the offer is rescinded (by the OfferRescinded event): one
 * frozen object for all households instead of one copy each. Views never mutate these; a view
 * replaces the object when the asset's state changes, and households a block behind keep theirs.
 */
const OFFERED_ASSETS = new WeakMap<MarketEvent, ReplayedAsset>();
const RESCINDED_ASSETS = new WeakMap<MarketEvent, ReplayedAsset>();

function sharedAsset(
  cache: WeakMap<MarketEvent, ReplayedAsset>,
  ev: MarketEvent,
  make: () => ReplayedAsset,
): ReplayedAsset {
  let a = cache.get(ev);
  if (a === undefined) {
    a = Object.freeze(make());
    cache.set(ev, a);
  }
  return a;
}

const ownerOf = (c: AssetCreation): string => (c.name === "AssetAdded" ? c.anonAddress : c.owner);

/**
 * The market as one household needs it, rebuilt from the logs: every live offer, the assets it
 * owns or that are on offer, and its own addresses' balances. What `replayMarket(.., { prune })`
 * gives for each of these, without the rest: a household never reads another's balance or an
 * asset nobody offers, and keeping them made every household replay the whole market, a cost of
 * households squared per block (a 1,000-household grid spent more time here than anywhere).
 * An asset first offered by someone else is taken from the registry when its offer arrives: the
 * owner it was created with is still its owner, since an asset leaves its owner only by being
 * traded or deposited, after which it can no longer be offered.
 *
 * Like MarketReplay, logs at or before the last one applied are skipped (a log feed may repeat).
 */
export class HouseholdMarketView implements MarketView {
  readonly state: MarketState = { assets: new Map(), offers: new Map(), balances: new Map() };
  readonly #isMine: (address: string) => boolean;
  readonly #registry: AssetRegistry;
  /**
   * A registry of its own forgets an asset once it is traded or deposited (it can never be offered
   * again). A shared one keeps it: a household a block behind may still replay its offer.
   */
  readonly #prunesRegistry: boolean;
  readonly #cursor = new LogCursor();

  constructor(opts: { isMine: (address: string) => boolean; registry?: AssetRegistry }) {
    this.#isMine = opts.isMine;
    this.#registry = opts.registry ?? new Map();
    this.#prunesRegistry = opts.registry === undefined;
  }

  /** Assets the registry holds (a measure of what a view costs in memory). */
  get registeredAssets(): number {
    return this.#registry.size;
  }

  /** The last log applied, or undefined before the first. */
  get position(): LogPosition | undefined {
    return this.#cursor.position;
  }

  /** Applies the logs after the last one applied; returns their events (decoded by `decode`), in order. */
  apply<L extends LogPosition>(logs: Iterable<L>, decode: (log: L) => MarketEvent | undefined): MarketEvent[] {
    const events = this.#cursor.fresh(logs, decode);
    for (const ev of events) this.#applyOne(ev);
    return events;
  }

  #add(who: string, amount: bigint): void {
    if (!this.#isMine(who)) return;
    const balances = this.state.balances;
    const balance = (balances.get(who) ?? 0n) + amount;
    if (balance === 0n) balances.delete(who);
    else balances.set(who, balance);
  }

  #fromCreation(c: AssetCreation): ReplayedAsset {
    return { owner: ownerOf(c), powerW: c.powerW, start: c.start, end: c.end, locked: false };
  }

  /** An asset in the view; throws, naming `why`, if the view does not hold it. */
  #asset(id: bigint, why: string): ReplayedAsset {
    const a = this.state.assets.get(id);
    if (a === undefined) throw new Error(`market view: ${why} for unknown asset ${id}`);
    return a;
  }

  #applyOne(ev: MarketEvent): void {
    const { assets, offers } = this.state;
    switch (ev.name) {
      case "AssetAdded":
      case "AssetSplit":
        // A shared registry learns an asset from its owner's view, which applies the creation
        // before the owner can offer it, so before any view looks it up; a registry of its own
        // has to hear of every asset.
        if (this.#isMine(ownerOf(ev))) {
          if (!this.#registry.has(ev.assetID)) this.#registry.set(ev.assetID, ev);
          assets.set(ev.assetID, this.#fromCreation(ev));
        } else if (this.#prunesRegistry) this.#registry.set(ev.assetID, ev);
        return;
      case "FinancialAdded":
        this.#add(ev.anonAddress, ev.amount);
        return;
      case "FinancialDeposited":
        this.#add(ev.anonAddress, -ev.amount);
        return;
      case "OfferPosted": {
        let a = assets.get(ev.assetID);
        if (a === undefined) {
          const c = this.#registry.get(ev.assetID);
          if (c === undefined) throw new Error(`market view: an offer for unknown asset ${ev.assetID}`);
          a = sharedAsset(OFFERED_ASSETS, ev, () => ({ ...this.#fromCreation(c), locked: true }));
          assets.set(ev.assetID, a);
        } else if (Object.isFrozen(a)) {
          a = sharedAsset(OFFERED_ASSETS, ev, () => ({ ...(a as ReplayedAsset), locked: true }));
          assets.set(ev.assetID, a);
        } else a.locked = true;
        let offer = OFFERS.get(ev);
        if (offer === undefined) {
          offer = Object.freeze({
            poster: a.owner,
            assetID: ev.assetID,
            priceMicroPerWInterval: ev.priceMicroPerWInterval,
            state: "Open" as const,
          });
          OFFERS.set(ev, offer);
        }
        offers.set(ev.offerID, offer);
        if (a.powerW < 0n) this.#add(a.owner, -costOf(ev.priceMicroPerWInterval, a.powerW, a.start, a.end));
        return;
      }
      case "OfferRescinded": {
        const o = offers.get(ev.offerID);
        if (!o) throw new Error(`market view: rescinded unknown offer ${ev.offerID}`);
        let a = this.#asset(o.assetID, "a rescinded offer");
        if (Object.isFrozen(a)) {
          const locked = a;
          a = sharedAsset(RESCINDED_ASSETS, ev, () => ({ ...locked, locked: false }));
          assets.set(o.assetID, a);
        } else a.locked = false;
        if (a.powerW < 0n) this.#add(o.poster, costOf(o.priceMicroPerWInterval, a.powerW, a.start, a.end));
        offers.delete(ev.offerID);
        return;
      }
      case "OfferAccepted": {
        const o = offers.get(ev.offerID);
        if (!o) throw new Error(`market view: accepted unknown offer ${ev.offerID}`);
        const a = this.#asset(o.assetID, "an accepted offer");
        // The accepting asset: ours if we hold it; anyone else's balance is not kept.
        const b = assets.get(ev.assetID);
        const bOwner = b?.owner ?? ZERO_ADDRESS;
        if (a.powerW > 0n) {
          this.#add(bOwner, -ev.payment);
          this.#add(o.poster, ev.payment);
        } else {
          this.#add(bOwner, ev.payment);
          this.#add(o.poster, costOf(o.priceMicroPerWInterval, a.powerW, a.start, a.end) - ev.payment);
        }
        // Retired: what a holder of the object sees, unless the object is shared (households a
        // block behind still see the offer open); the view drops both assets either way.
        if (!Object.isFrozen(a)) {
          a.owner = ZERO_ADDRESS;
          a.locked = false;
        }
        if (b && !Object.isFrozen(b)) b.owner = ZERO_ADDRESS;
        offers.delete(ev.offerID);
        assets.delete(o.assetID);
        assets.delete(ev.assetID);
        if (this.#prunesRegistry) {
          this.#registry.delete(o.assetID);
          this.#registry.delete(ev.assetID);
        }
        return;
      }
      case "AssetDeposited": {
        const a = assets.get(ev.assetID);
        if (a && !Object.isFrozen(a)) a.owner = ZERO_ADDRESS;
        assets.delete(ev.assetID);
        if (this.#prunesRegistry) this.#registry.delete(ev.assetID);
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
