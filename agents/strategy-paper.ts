import { costOf, type ReplayedAsset, type ReplayedOffer } from "../attacks/market-replay";
import { check } from "../common/errors";
import type { Rng } from "../common/rng";
import type { Strategy, StrategyAction, StrategyContext } from "./strategy";

interface AskView {
  offerID: bigint;
  offer: ReplayedOffer;
  asset: ReplayedAsset | undefined;
}

export interface PaperStrategyOptions {
  /** The base price every ask is posted at, in money units per watt per interval. */
  basePriceMicroPerWInterval: bigint;
  /**
   * Which usable ask a consumer takes: "lowest-id" is the paper's first come, first served;
   * "random" picks one uniformly with `rng`. With hundreds of consumers on one market, all of them
   * chase the same lowest ask every block and all but one revert; random choice spreads them.
   */
  offerChoice?: "lowest-id" | "random";
  rng?: Rng;
}

/**
 * The PETra paper's prosumer: a producer posts each interval's surplus as an ask at the base
 * price; a consumer accepts the open asks it can use, first come first served (lowest offer ID
 * first). Only intervals where the forecast says the household sells (or buys) are offered (or
 * bought into): the parts a trade hands a household (a buyer's bought production, a seller's
 * delivered consumption) are settled with the DSO, never traded on.
 */
export class PaperStrategy implements Strategy {
  readonly name = "paper";
  readonly #price: bigint;
  readonly #rng: Rng | undefined;

  constructor(opts: PaperStrategyOptions) {
    check(
      typeof opts.basePriceMicroPerWInterval === "bigint" && opts.basePriceMicroPerWInterval > 0n,
      "basePriceMicroPerWInterval",
      `must be a positive bigint, got ${opts.basePriceMicroPerWInterval}`,
    );
    check(
      opts.offerChoice !== "random" || opts.rng !== undefined,
      "rng",
      'offerChoice "random" needs an rng (from the run\'s seed)',
    );
    this.#price = opts.basePriceMicroPerWInterval;
    this.#rng = opts.offerChoice === "random" ? opts.rng : undefined;
  }

  decide(ctx: StrategyContext): StrategyAction[] {
    const actions: StrategyAction[] = [];
    const tradable = (start: bigint, end: bigint, sign: 1 | -1) => {
      if (start < BigInt(ctx.tradableFrom)) return false;
      for (let k = Number(start); k <= Number(end); k++) if (Math.sign(ctx.forecastNetW(k)) !== sign) return false;
      return true;
    };

    // Built when a consumer asset first needs it: a pass of a producer, or of a household with
    // nothing to trade, then costs nothing however many offers the market holds.
    let asks: AskView[] | undefined;
    const openAsks = (): AskView[] => {
      asks ??= [...ctx.market.offers.entries()]
        .filter(([, o]) => o.state === "Open" && !ctx.mine.has(o.poster))
        .map(([offerID, o]) => ({ offerID, offer: o, asset: ctx.market.assets.get(o.assetID) }))
        .filter((x) => x.asset !== undefined && x.asset.powerW > 0n)
        .sort((a, b) => (a.offerID < b.offerID ? -1 : a.offerID > b.offerID ? 1 : 0));
      return asks;
    };
    const claimed = new Set<bigint>(ctx.busyOffers);
    const committed = new Map(ctx.committedMicro);

    const candidates: [bigint, ReplayedAsset | undefined][] = ctx.ownAssetIds
      ? [...ctx.ownAssetIds].map((id) => [id, ctx.market.assets.get(id)])
      : [...ctx.market.assets.entries()];
    const myAssets = candidates
      .filter((e): e is [bigint, ReplayedAsset] => e[1] !== undefined)
      .filter(([id, a]) => ctx.mine.has(a.owner) && !a.locked && !ctx.busyAssets.has(id))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

    for (const [assetID, a] of myAssets) {
      if (a.powerW > 0n) {
        if (tradable(a.start, a.end, 1)) {
          actions.push({ kind: "post", from: a.owner, assetID, priceMicroPerWInterval: this.#price });
        }
        continue;
      }
      if (!tradable(a.start, a.end, -1)) continue;
      for (const ask of this.#rng ? this.#rng.shuffle(openAsks()) : openAsks()) {
        if (claimed.has(ask.offerID)) continue;
        const b = ask.asset as NonNullable<typeof ask.asset>;
        const s = a.start > b.start ? a.start : b.start;
        const e = a.end < b.end ? a.end : b.end;
        if (s > e) continue;
        const absA = -a.powerW;
        const tradedW = absA < b.powerW ? absA : b.powerW;
        const payment = costOf(ask.offer.priceMicroPerWInterval, tradedW, s, e);
        const free = (ctx.market.balances.get(a.owner) ?? 0n) - (committed.get(a.owner) ?? 0n);
        if (payment > free) continue;
        actions.push({ kind: "accept", from: a.owner, offerID: ask.offerID, assetID, paymentMicro: payment });
        claimed.add(ask.offerID);
        committed.set(a.owner, (committed.get(a.owner) ?? 0n) + payment);
        break;
      }
    }
    return actions;
  }
}
