/**
 * Rebuilds the complete EnergyMarket state (every asset, offer and balance) from its events alone.
 * This is what an observer who reads only the chain's logs knows; the contract is designed so that
 * nothing else is needed (a trade announces every new part with AssetSplit).
 */

export type MarketEvent =
  | { name: "AssetAdded"; anonAddress: string; assetID: bigint; powerW: bigint; start: bigint; end: bigint }
  | { name: "FinancialAdded"; anonAddress: string; amount: bigint }
  | { name: "OfferPosted"; offerID: bigint; assetID: bigint; priceMicroPerWInterval: bigint }
  | { name: "OfferRescinded"; offerID: bigint }
  | { name: "OfferAccepted"; offerID: bigint; assetID: bigint; payment: bigint }
  | {
      name: "AssetSplit";
      parentID: bigint;
      assetID: bigint;
      owner: string;
      powerW: bigint;
      start: bigint;
      end: bigint;
    }
  | { name: "AssetDeposited"; anonAddress: string; assetID: bigint }
  | { name: "FinancialDeposited"; anonAddress: string; amount: bigint }
  | { name: "MinterSet"; minter: string; allowed: boolean }
  | { name: "GasFunded"; anonAddress: string; amountWei: bigint };

export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

export interface ReplayedAsset {
  owner: string;
  powerW: bigint;
  start: bigint;
  end: bigint;
  locked: boolean;
}

export type ReplayedOfferState = "Open" | "Rescinded" | "Accepted";

export interface ReplayedOffer {
  poster: string;
  assetID: bigint;
  priceMicroPerWInterval: bigint;
  state: ReplayedOfferState;
}

export interface MarketState {
  assets: Map<bigint, ReplayedAsset>;
  offers: Map<bigint, ReplayedOffer>;
  balances: Map<string, bigint>;
}

/**
 * A market state as its readers (strategies, the prosumer) see it: what they may look up, never
 * change. A MarketState is one; so is a household's view backed by a book shared with others.
 */
export interface ReadonlyMarketState {
  readonly assets: ReadonlyMap<bigint, ReplayedAsset>;
  readonly offers: ReadonlyMap<bigint, ReplayedOffer>;
  readonly balances: ReadonlyMap<string, bigint>;
}

/** price x |power| x intervals: what a bid locks and what a trade pays, as the contract computes it. */
export function costOf(priceMicroPerWInterval: bigint, powerW: bigint, start: bigint, end: bigint): bigint {
  const abs = powerW < 0n ? -powerW : powerW;
  return priceMicroPerWInterval * abs * (end - start + 1n);
}

/** An asset's shape, as the money rules read it. */
type Shape = Pick<ReplayedAsset, "powerW" | "start" | "end">;

/**
 * Money a posted offer holds back from its poster: a bid (consumption on offer) escrows its whole
 * cost until it is accepted or rescinded; an ask holds nothing. (Callers move it only for bids, so
 * that an ask leaves no zero balance behind in an unpruned replay.)
 */
export function escrowOf(priceMicroPerWInterval: bigint, offered: Shape): bigint {
  return offered.powerW < 0n ? costOf(priceMicroPerWInterval, offered.powerW, offered.start, offered.end) : 0n;
}

/**
 * The balance changes an accepted offer makes, as the contract makes them, through `add(who,
 * amount)`: for an ask the accepting asset's owner pays the poster; for a bid the escrow pays the
 * accepter and the rest of it goes back to the poster. Every replay of the market applies these.
 */
export function settleAccepted(
  add: (who: string, amount: bigint) => void,
  offer: Pick<ReplayedOffer, "poster" | "priceMicroPerWInterval">,
  offered: Shape,
  accepter: string,
  payment: bigint,
): void {
  if (offered.powerW > 0n) {
    add(accepter, -payment);
    add(offer.poster, payment);
  } else {
    add(accepter, payment);
    add(offer.poster, escrowOf(offer.priceMicroPerWInterval, offered) - payment);
  }
}

export function emptyMarketState(): MarketState {
  return { assets: new Map(), offers: new Map(), balances: new Map() };
}

export interface ReplayOptions {
  /**
   * Forget what can no longer change the market: offers once accepted or rescinded, assets once
   * traded or deposited (their owner is then the zero address), balances at zero. An agent that
   * replays a whole day keeps only the live market then, not the day's history. Reading a pruned
   * entry gives undefined, as for one never seen. Default false: the attack suite reads history.
   */
  prune?: boolean;
}

/** Applies events in chain order (block, then log index). Throws on an event that contradicts the state. */
export function replayMarket(
  events: Iterable<MarketEvent>,
  state: MarketState = emptyMarketState(),
  opts: ReplayOptions = {},
): MarketState {
  const prune = opts.prune === true;
  const asset = (id: bigint): ReplayedAsset => {
    const a = state.assets.get(id);
    if (!a) throw new Error(`market replay: event refers to unknown asset ${id}`);
    return a;
  };
  const offer = (id: bigint): ReplayedOffer => {
    const o = state.offers.get(id);
    if (!o) throw new Error(`market replay: event refers to unknown offer ${id}`);
    return o;
  };
  const add = (who: string, amount: bigint) => {
    const balance = (state.balances.get(who) ?? 0n) + amount;
    if (prune && balance === 0n) state.balances.delete(who);
    else state.balances.set(who, balance);
  };

  for (const ev of events) {
    switch (ev.name) {
      case "AssetAdded":
        state.assets.set(ev.assetID, {
          owner: ev.anonAddress,
          powerW: ev.powerW,
          start: ev.start,
          end: ev.end,
          locked: false,
        });
        break;
      case "AssetSplit":
        state.assets.set(ev.assetID, {
          owner: ev.owner,
          powerW: ev.powerW,
          start: ev.start,
          end: ev.end,
          locked: false,
        });
        break;
      case "FinancialAdded":
        add(ev.anonAddress, ev.amount);
        break;
      case "FinancialDeposited":
        add(ev.anonAddress, -ev.amount);
        break;
      case "OfferPosted": {
        const a = asset(ev.assetID);
        a.locked = true;
        state.offers.set(ev.offerID, {
          poster: a.owner,
          assetID: ev.assetID,
          priceMicroPerWInterval: ev.priceMicroPerWInterval,
          state: "Open",
        });
        if (a.powerW < 0n) add(a.owner, -escrowOf(ev.priceMicroPerWInterval, a));
        break;
      }
      case "OfferRescinded": {
        const o = offer(ev.offerID);
        const a = asset(o.assetID);
        o.state = "Rescinded";
        a.locked = false;
        if (a.powerW < 0n) add(o.poster, escrowOf(o.priceMicroPerWInterval, a));
        if (prune) state.offers.delete(ev.offerID);
        break;
      }
      case "OfferAccepted": {
        const o = offer(ev.offerID);
        const a = asset(o.assetID);
        const b = asset(ev.assetID);
        o.state = "Accepted";
        settleAccepted(add, o, a, b.owner, ev.payment);
        a.owner = ZERO_ADDRESS;
        a.locked = false;
        b.owner = ZERO_ADDRESS;
        if (prune) {
          state.offers.delete(ev.offerID);
          state.assets.delete(o.assetID);
          state.assets.delete(ev.assetID);
        }
        break;
      }
      case "AssetDeposited":
        asset(ev.assetID).owner = ZERO_ADDRESS;
        if (prune) state.assets.delete(ev.assetID);
        break;
      case "MinterSet":
      case "GasFunded":
        break;
      default: {
        const unreachable: never = ev;
        throw new Error(`market replay: unhandled event ${JSON.stringify(unreachable)}`);
      }
    }
  }
  return state;
}

/** Where a log sits in the chain. */
export interface LogPosition {
  blockNumber: number;
  logIndex: number;
}

/**
 * The position of the last log taken, for a consumer of logs that may arrive more than once (a log
 * filter that was recreated, a subscription that resent a block): a log at or before it is not new.
 * Logs must come in chain order, as both watchers (agents/chain-live.ts, agents/sim/sim-chain.ts)
 * deliver them.
 */
export class LogCursor {
  #lastBlock = -1;
  #lastIndex = -1;

  /** The last log taken, or undefined before the first. */
  get position(): LogPosition | undefined {
    return this.#lastBlock < 0 ? undefined : { blockNumber: this.#lastBlock, logIndex: this.#lastIndex };
  }

  /** True (and the cursor moves to it) for a log after the last one taken; false for one seen before. */
  take(log: LogPosition): boolean {
    if (log.blockNumber < this.#lastBlock || (log.blockNumber === this.#lastBlock && log.logIndex <= this.#lastIndex))
      return false;
    this.#lastBlock = log.blockNumber;
    this.#lastIndex = log.logIndex;
    return true;
  }

  /** The events of the logs after the last one taken (decoded by `decode`), in order; takes them all. */
  fresh<L extends LogPosition>(logs: Iterable<L>, decode: (log: L) => MarketEvent | undefined): MarketEvent[] {
    const events: MarketEvent[] = [];
    for (const log of logs) {
      if (!this.take(log)) continue;
      const ev = decode(log);
      if (ev) events.push(ev);
    }
    return events;
  }
}

/**
 * A market state kept up to date from logs that may arrive more than once (a log filter that was
 * recreated, a subscription that resent a block): a log at or before the last one applied is
 * skipped, so applying a batch twice changes nothing. Logs must come in chain order, as both
 * watchers (agents/chain-live.ts, agents/sim/sim-chain.ts) deliver them.
 */
export class MarketReplay {
  readonly state: MarketState = emptyMarketState();
  readonly #opts: ReplayOptions;
  readonly #cursor = new LogCursor();

  constructor(opts: ReplayOptions = {}) {
    this.#opts = opts;
  }

  /** The last log applied, or undefined before the first. */
  get position(): LogPosition | undefined {
    return this.#cursor.position;
  }

  /** Applies the logs after the last one applied; returns the events applied (decoded by `decode`), in order. */
  apply<L extends LogPosition>(logs: Iterable<L>, decode: (log: L) => MarketEvent | undefined): MarketEvent[] {
    const events = this.#cursor.fresh(logs, decode);
    replayMarket(events, this.state, this.#opts);
    return events;
  }
}

/** Converts one parsed EnergyMarket log (ethers LogDescription) into a MarketEvent; undefined for other logs. */
export function toMarketEvent(parsed: { name: string; args: ReadonlyArray<unknown> } | null): MarketEvent | undefined {
  if (!parsed) return undefined;
  const a = parsed.args as ReadonlyArray<never>;
  const big = (i: number): bigint => BigInt(a[i]);
  const addr = (i: number): string => String(a[i]);
  switch (parsed.name) {
    case "AssetAdded":
      return { name: "AssetAdded", anonAddress: addr(0), assetID: big(1), powerW: big(2), start: big(3), end: big(4) };
    case "AssetSplit":
      return {
        name: "AssetSplit",
        parentID: big(0),
        assetID: big(1),
        owner: addr(2),
        powerW: big(3),
        start: big(4),
        end: big(5),
      };
    case "FinancialAdded":
      return { name: "FinancialAdded", anonAddress: addr(0), amount: big(1) };
    case "FinancialDeposited":
      return { name: "FinancialDeposited", anonAddress: addr(0), amount: big(1) };
    case "OfferPosted":
      return { name: "OfferPosted", offerID: big(0), assetID: big(1), priceMicroPerWInterval: big(2) };
    case "OfferRescinded":
      return { name: "OfferRescinded", offerID: big(0) };
    case "OfferAccepted":
      return { name: "OfferAccepted", offerID: big(0), assetID: big(1), payment: big(2) };
    case "AssetDeposited":
      return { name: "AssetDeposited", anonAddress: addr(0), assetID: big(1) };
    case "MinterSet":
      return { name: "MinterSet", minter: addr(0), allowed: Boolean(a[1]) };
    case "GasFunded":
      return { name: "GasFunded", anonAddress: addr(0), amountWei: big(1) };
    default:
      return undefined;
  }
}
