import {
  escrowOf,
  LogCursor,
  type LogPosition,
  type MarketEvent,
  type MarketState,
  type ReadonlyMarketState,
  type ReplayedAsset,
  settleAccepted,
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
 * A household that runs as its own process (live mode) keeps one; the households of a simulation
 * share a book instead (agents/market-book.ts), so that each log is applied once, not once each.
 */
export class HouseholdMarketView implements MarketView {
  readonly state: MarketState = { assets: new Map(), offers: new Map(), balances: new Map() };
  readonly #isMine: (address: string) => boolean;
  /** Every asset that may still be offered, as created; forgotten once traded or deposited. */
  readonly #registry = new Map<bigint, AssetCreation>();
  readonly #cursor = new LogCursor();

  constructor(opts: { isMine: (address: string) => boolean }) {
    this.#isMine = opts.isMine;
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
        this.#registry.set(ev.assetID, ev);
        if (this.#isMine(ownerOf(ev))) assets.set(ev.assetID, this.#fromCreation(ev));
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
          a = this.#fromCreation(c);
          assets.set(ev.assetID, a);
        }
        a.locked = true;
        offers.set(ev.offerID, {
          poster: a.owner,
          assetID: ev.assetID,
          priceMicroPerWInterval: ev.priceMicroPerWInterval,
          state: "Open",
        });
        if (a.powerW < 0n) this.#add(a.owner, -escrowOf(ev.priceMicroPerWInterval, a));
        return;
      }
      case "OfferRescinded": {
        const o = offers.get(ev.offerID);
        if (!o) throw new Error(`market view: rescinded unknown offer ${ev.offerID}`);
        const a = this.#asset(o.assetID, "a rescinded offer");
        a.locked = false;
        if (a.powerW < 0n) this.#add(o.poster, escrowOf(o.priceMicroPerWInterval, a));
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
        settleAccepted((who, amount) => this.#add(who, amount), o, a, bOwner, ev.payment);
        // Retired: what a holder of the object sees; the view drops both assets.
        a.owner = ZERO_ADDRESS;
        a.locked = false;
        if (b) b.owner = ZERO_ADDRESS;
        offers.delete(ev.offerID);
        assets.delete(o.assetID);
        assets.delete(ev.assetID);
        this.#registry.delete(o.assetID);
        this.#registry.delete(ev.assetID);
        return;
      }
      case "AssetDeposited": {
        const a = assets.get(ev.assetID);
        if (a) a.owner = ZERO_ADDRESS;
        assets.delete(ev.assetID);
        this.#registry.delete(ev.assetID);
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
