import { expect } from "chai";
import type { StrategyContext } from "../../agents/strategy";
import { PaperStrategy } from "../../agents/strategy-paper";
import { type MarketEvent, replayMarket } from "../../attacks/market-replay";

const PRODUCER = "0x00000000000000000000000000000000000000A1";
const OTHER_PRODUCER = "0x00000000000000000000000000000000000000A2";
const CONSUMER = "0x00000000000000000000000000000000000000B1";

const added = (anonAddress: string, assetID: bigint, powerW: bigint, k: bigint): MarketEvent => ({
  name: "AssetAdded",
  anonAddress,
  assetID,
  powerW,
  start: k,
  end: k,
});

function ctx(
  events: MarketEvent[],
  over: Partial<StrategyContext> & { mine: Set<string>; netW: Record<number, number> },
): StrategyContext {
  return {
    market: replayMarket(events),
    tradableFrom: 57,
    forecastNetW: (k) => over.netW[k] ?? 0,
    busyAssets: new Set(),
    busyOffers: new Set(),
    committedMicro: new Map(),
    ...over,
  };
}

const strategy = new PaperStrategy({ basePriceMicroPerWInterval: 2n });

describe("PaperStrategy # producer", () => {
  it("posts each unlocked surplus asset as an ask at the base price", () => {
    const c = ctx([added(PRODUCER, 0n, 5000n, 57n), added(PRODUCER, 1n, 4000n, 58n)], {
      mine: new Set([PRODUCER]),
      netW: { 57: 5000, 58: 4000 },
    });
    expect(strategy.decide(c)).to.deep.equal([
      { kind: "post", from: PRODUCER, assetID: 0n, priceMicroPerWInterval: 2n },
      { kind: "post", from: PRODUCER, assetID: 1n, priceMicroPerWInterval: 2n },
    ]);
  });

  it("does not post an asset already on offer, in flight, or in a closed interval", () => {
    const events = [added(PRODUCER, 0n, 5000n, 57n), added(PRODUCER, 1n, 4000n, 58n), added(PRODUCER, 2n, 3000n, 59n)];
    events.push({ name: "OfferPosted", offerID: 0n, assetID: 1n, priceMicroPerWInterval: 2n });
    const c = ctx(events, {
      mine: new Set([PRODUCER]),
      netW: { 57: 5000, 58: 4000, 59: 3000 },
      tradableFrom: 58,
      busyAssets: new Set([2n]),
    });
    expect(strategy.decide(c)).to.deep.equal([]);
  });

  it("does not sell back production it bought in an interval where it consumes", () => {
    const c = ctx([added(CONSUMER, 0n, 3000n, 57n)], { mine: new Set([CONSUMER]), netW: { 57: -3000 } });
    expect(strategy.decide(c)).to.deep.equal([]);
  });
});

describe("PaperStrategy # consumer", () => {
  const market = (): MarketEvent[] => [
    added(PRODUCER, 0n, 5000n, 57n),
    added(OTHER_PRODUCER, 1n, 2000n, 57n),
    added(CONSUMER, 2n, -3000n, 57n),
    { name: "FinancialAdded", anonAddress: CONSUMER, amount: 6000n },
    { name: "OfferPosted", offerID: 0n, assetID: 0n, priceMicroPerWInterval: 2n },
    { name: "OfferPosted", offerID: 1n, assetID: 1n, priceMicroPerWInterval: 2n },
  ];

  it("accepts the first open ask it can use (lowest offer ID)", () => {
    const c = ctx(market(), { mine: new Set([CONSUMER]), netW: { 57: -3000 } });
    expect(strategy.decide(c)).to.deep.equal([
      { kind: "accept", from: CONSUMER, offerID: 0n, assetID: 2n, paymentMicro: 6000n },
    ]);
  });

  it("passes over an offer it is already trying, and its own offers", () => {
    const c = ctx(market(), { mine: new Set([CONSUMER]), netW: { 57: -3000 }, busyOffers: new Set([0n]) });
    expect(strategy.decide(c)).to.deep.equal([
      { kind: "accept", from: CONSUMER, offerID: 1n, assetID: 2n, paymentMicro: 4000n },
    ]);
    const own = ctx(market(), { mine: new Set([CONSUMER, PRODUCER, OTHER_PRODUCER]), netW: { 57: -3000 } });
    expect(strategy.decide(own).filter((a) => a.kind === "accept")).to.deep.equal([]);
  });

  it("skips an ask it cannot pay for, counting money promised to accepts in flight", () => {
    const poor = ctx(market(), {
      mine: new Set([CONSUMER]),
      netW: { 57: -3000 },
      committedMicro: new Map([[CONSUMER, 1000n]]),
    });
    // 6000 - 1000 left: offer 0 costs 6000, offer 1 costs 4000.
    expect(strategy.decide(poor)).to.deep.equal([
      { kind: "accept", from: CONSUMER, offerID: 1n, assetID: 2n, paymentMicro: 4000n },
    ]);
  });

  it("never aims two of its assets at one offer", () => {
    const events = [
      ...market(),
      added(CONSUMER, 3n, -1000n, 57n),
      { name: "FinancialAdded", anonAddress: CONSUMER, amount: 10_000n } as MarketEvent,
    ];
    const actions = strategy.decide(ctx(events, { mine: new Set([CONSUMER]), netW: { 57: -4000 } }));
    expect(actions.map((a) => (a.kind === "accept" ? a.offerID : -1n))).to.deep.equal([0n, 1n]);
  });

  it("ignores asks that do not overlap its interval, and intervals that have closed", () => {
    const events = [
      added(PRODUCER, 0n, 5000n, 58n),
      added(CONSUMER, 1n, -3000n, 57n),
      { name: "FinancialAdded", anonAddress: CONSUMER, amount: 10_000n } as MarketEvent,
    ];
    events.push({ name: "OfferPosted", offerID: 0n, assetID: 0n, priceMicroPerWInterval: 2n });
    expect(strategy.decide(ctx(events, { mine: new Set([CONSUMER]), netW: { 57: -3000 } }))).to.deep.equal([]);
    const closed = [...market()];
    expect(
      strategy.decide(ctx(closed, { mine: new Set([CONSUMER]), netW: { 57: -3000 }, tradableFrom: 58 })),
    ).to.deep.equal([]);
  });

  it("does not buy with the consumption a trade handed to a producer", () => {
    const c = ctx(market(), { mine: new Set([CONSUMER]), netW: { 57: 1000 } });
    expect(strategy.decide(c)).to.deep.equal([]);
  });
});
