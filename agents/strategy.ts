import type { ReadonlyMarketState } from "../attacks/market-replay";

/** What a strategy may ask its prosumer to do; the prosumer sends it as a transaction. */
export type StrategyAction =
  | { kind: "post"; from: string; assetID: bigint; priceMicroPerWInterval: bigint }
  | { kind: "accept"; from: string; offerID: bigint; assetID: bigint; paymentMicro: bigint };

/** Everything a strategy decides from. Read-only: the prosumer owns the state. */
export interface StrategyContext {
  /** The market as rebuilt from its logs up to the last processed block. */
  market: ReadonlyMarketState;
  /** The household's pseudonym addresses (checksummed, as the logs carry them). */
  mine: ReadonlySet<string>;
  /** First market interval still open for trading (earlier ones are in or past delivery). */
  tradableFrom: number;
  /** Forecast net production of an interval in watts: > 0 the household sells, < 0 it buys. */
  forecastNetW(interval: number): number;
  /** Assets with a transaction of the household in flight; not to be used again until it lands. */
  busyAssets: ReadonlySet<bigint>;
  /** Offers the household is already trying to accept (or saw fail) and must not try again now. */
  busyOffers: ReadonlySet<bigint>;
  /** Money each address has promised to accepts in flight, in market money units. */
  committedMicro: ReadonlyMap<string, bigint>;
  /**
   * Ids of the assets the household may own (a superset: check `market` for each). Lets a
   * strategy skip scanning every asset of a market with thousands of households.
   */
  ownAssetIds?: Iterable<bigint>;
}

/** A trading strategy: a pure function of the context, so the same logs give the same actions. */
export interface Strategy {
  readonly name: string;
  decide(ctx: StrategyContext): StrategyAction[];
}
