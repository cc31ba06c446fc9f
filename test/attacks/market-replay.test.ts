import { expect } from "chai";
import {
  type MarketEvent,
  MarketReplay,
  type MarketState,
  replayMarket,
  ZERO_ADDRESS,
} from "../../attacks/market-replay";

const SELLER = "0x1000000000000000000000000000000000000001";
const BUYER = "0x2000000000000000000000000000000000000002";
const OTHER = "0x3000000000000000000000000000000000000003";

/** A small day: two asks, one bought (with a leftover part), one rescinded, a bid still open, deposits. */
const DAY: MarketEvent[][] = [
  [
    { name: "AssetAdded", anonAddress: SELLER, assetID: 1n, powerW: 1000n, start: 10n, end: 10n },
    { name: "AssetAdded", anonAddress: SELLER, assetID: 2n, powerW: 500n, start: 11n, end: 11n },
    { name: "AssetAdded", anonAddress: BUYER, assetID: 3n, powerW: -600n, start: 10n, end: 10n },
    { name: "AssetAdded", anonAddress: OTHER, assetID: 4n, powerW: -200n, start: 12n, end: 12n },
    { name: "FinancialAdded", anonAddress: BUYER, amount: 10_000n },
    { name: "FinancialAdded", anonAddress: OTHER, amount: 5_000n },
  ],
  [
    { name: "OfferPosted", offerID: 1n, assetID: 1n, priceMicroPerWInterval: 5n },
    { name: "OfferPosted", offerID: 2n, assetID: 2n, priceMicroPerWInterval: 5n },
    { name: "OfferPosted", offerID: 3n, assetID: 4n, priceMicroPerWInterval: 7n },
  ],
  [
    { name: "AssetSplit", parentID: 1n, assetID: 5n, owner: SELLER, powerW: 400n, start: 10n, end: 10n },
    { name: "OfferAccepted", offerID: 1n, assetID: 3n, payment: 3_000n },
    { name: "OfferRescinded", offerID: 2n },
  ],
  [
    { name: "AssetDeposited", anonAddress: SELLER, assetID: 5n },
    { name: "FinancialDeposited", anonAddress: SELLER, amount: 3_000n },
  ],
];

/** The blocks as logs: block b + 1, log index i. */
const logsOf = (blocks: MarketEvent[][]) =>
  blocks.map((evs, b) => evs.map((ev, i) => ({ blockNumber: b + 1, logIndex: i, ev })));
const decode = (l: { ev: MarketEvent }) => l.ev;

/** What can still change: open offers, assets someone holds, non-zero balances. */
function live(state: MarketState) {
  return {
    offers: [...state.offers].filter(([, o]) => o.state === "Open"),
    assets: [...state.assets].filter(([, a]) => a.owner !== ZERO_ADDRESS),
    balances: [...state.balances].filter(([, v]) => v !== 0n),
  };
}

describe("market replay # re-delivered logs and pruning", () => {
  it("applies a re-delivered block once: balances, assets and offers as if it came once", () => {
    const once = new MarketReplay();
    for (const block of logsOf(DAY)) once.apply(block, decode);
    const twice = new MarketReplay();
    const blocks = logsOf(DAY);
    twice.apply(blocks[0] ?? [], decode);
    twice.apply(blocks[1] ?? [], decode);
    twice.apply([...(blocks[1] ?? []), ...(blocks[2] ?? [])], decode); // block 2 again, then block 3
    expect(twice.apply(blocks[2] ?? [], decode)).to.deep.equal([]); // block 3 again: nothing applied
    twice.apply(blocks[3] ?? [], decode);
    expect(twice.state).to.deep.equal(once.state);
    expect(twice.position).to.deep.equal({ blockNumber: 4, logIndex: 1 });
    // A plain replay of a repeated event double-counts: what the cursor protects against.
    const naive = replayMarket(DAY.flat());
    replayMarket([{ name: "FinancialAdded", anonAddress: BUYER, amount: 10_000n }], naive);
    expect(naive.balances.get(BUYER)).to.not.equal(once.state.balances.get(BUYER));
  });

  it("skips a re-delivered log within a block and a late log from an older block", () => {
    const r = new MarketReplay({ prune: true });
    const blocks = logsOf(DAY);
    r.apply(blocks[0] ?? [], decode);
    r.apply(blocks[1] ?? [], decode);
    r.apply((blocks[2] ?? []).slice(0, 2), decode);
    // The accept again (now pruned) and the rest of block 3: no "unknown offer" error.
    expect(r.apply((blocks[2] ?? []).slice(1), decode).map((e) => e.name)).to.deep.equal(["OfferRescinded"]);
    expect(r.apply(blocks[0] ?? [], decode)).to.deep.equal([]);
    expect(r.state.offers.has(2n)).to.equal(false);
  });

  it("prunes to the live market and agrees with the full replay on it", () => {
    const full = replayMarket(DAY.flat());
    const pruned = replayMarket(DAY.flat(), undefined, { prune: true });
    expect(live(pruned)).to.deep.equal(live(full));
    // Accepted and rescinded offers, traded and deposited assets, zero balances are gone ...
    expect([...pruned.offers.keys()]).to.deep.equal([3n]);
    expect([...pruned.assets.keys()].sort()).to.deep.equal([2n, 4n]);
    expect(pruned.balances.has(SELLER)).to.equal(false);
    // ... and the full replay still holds the history the attack suite reads.
    expect(full.offers.get(1n)?.state).to.equal("Accepted");
    expect(full.assets.get(5n)?.owner).to.equal(ZERO_ADDRESS);
  });

  it("still refuses an event that contradicts the state", () => {
    expect(() =>
      replayMarket([{ name: "OfferAccepted", offerID: 9n, assetID: 1n, payment: 1n }], undefined, { prune: true }),
    ).to.throw(/unknown offer 9/);
  });
});
