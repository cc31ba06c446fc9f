import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { HouseholdMarketView } from "../../agents/market-view";
import { runSim } from "../../analysis/sim-runner";
import { readDataset } from "../../attacks/dataset";
import { readGroundTruth } from "../../attacks/ground-truth";
import { type MarketEvent, type MarketState, replayMarket } from "../../attacks/market-replay";
import { DAYTIME_30 } from "../fixtures/sim";

interface Block {
  number: number;
  events: MarketEvent[];
}

/** What a household reads of the market, from the whole replay or from its own view. */
function householdReads(state: MarketState, mine: ReadonlySet<string>) {
  const offers = [...state.offers].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    offers: offers.map(([id, o]) => ({ id, ...o, asset: state.assets.get(o.assetID) })),
    own: [...state.assets]
      .filter(([, a]) => mine.has(a.owner))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([id, a]) => ({ id, ...a })),
    balances: [...mine].sort().map((m) => [m, state.balances.get(m)]),
  };
}

/** Checks, block by block, that every household's view reads what the whole pruned replay reads. */
function compare(blocks: Block[], households: string[][]): number {
  const full = replayMarket([], undefined, { prune: true });
  const views = households.map((addresses) => new HouseholdMarketView({ isMine: (a) => addresses.includes(a) }));
  let checks = 0;
  for (const b of blocks) {
    replayMarket(b.events, full, { prune: true });
    const logs = b.events.map((ev, i) => ({ blockNumber: b.number, logIndex: i, ev }));
    views.forEach((v, h) => {
      v.apply(logs, (l) => l.ev);
      // A repeated feed changes nothing.
      v.apply(logs, (l) => l.ev);
      const mine = new Set(households[h]);
      expect(householdReads(v.state, mine), `household ${h} after block ${b.number}`).to.deep.equal(
        householdReads(full, mine),
      );
      checks++;
    });
  }
  return checks;
}

const SELLER = "0x1000000000000000000000000000000000000001";
const BUYER = "0x2000000000000000000000000000000000000002";
const OTHER = "0x3000000000000000000000000000000000000003";

describe("HouseholdMarketView # what a household reads equals the whole market's replay", function () {
  this.timeout(120_000);

  it("on a small day: asks bought, rescinded and re-offered, bids rescinded and filled, deposits", () => {
    const blocks: Block[] = [
      {
        number: 1,
        events: [
          { name: "AssetAdded", anonAddress: SELLER, assetID: 1n, powerW: 1000n, start: 10n, end: 10n },
          { name: "AssetAdded", anonAddress: SELLER, assetID: 2n, powerW: 500n, start: 11n, end: 11n },
          { name: "AssetAdded", anonAddress: BUYER, assetID: 3n, powerW: -600n, start: 10n, end: 10n },
          { name: "AssetAdded", anonAddress: OTHER, assetID: 4n, powerW: -200n, start: 12n, end: 12n },
          { name: "FinancialAdded", anonAddress: BUYER, amount: 10_000n },
          { name: "FinancialAdded", anonAddress: OTHER, amount: 5_000n },
        ],
      },
      {
        number: 2,
        events: [
          { name: "OfferPosted", offerID: 1n, assetID: 1n, priceMicroPerWInterval: 5n },
          { name: "OfferPosted", offerID: 2n, assetID: 2n, priceMicroPerWInterval: 5n },
          { name: "OfferPosted", offerID: 3n, assetID: 4n, priceMicroPerWInterval: 7n },
        ],
      },
      {
        number: 3,
        events: [
          { name: "AssetSplit", parentID: 1n, assetID: 5n, owner: SELLER, powerW: 400n, start: 10n, end: 10n },
          { name: "OfferAccepted", offerID: 1n, assetID: 3n, payment: 3_000n },
          { name: "OfferRescinded", offerID: 2n },
        ],
      },
      { number: 4, events: [{ name: "OfferPosted", offerID: 4n, assetID: 5n, priceMicroPerWInterval: 6n }] },
      {
        number: 5,
        events: [
          { name: "OfferRescinded", offerID: 4n },
          { name: "AssetDeposited", anonAddress: SELLER, assetID: 5n },
          { name: "AssetDeposited", anonAddress: SELLER, assetID: 2n },
          { name: "FinancialDeposited", anonAddress: SELLER, amount: 3_000n },
          // The open bid is withdrawn: its locked money goes back.
          { name: "OfferRescinded", offerID: 3n },
          // Minted a block before they can be offered: an owner offers what its view already holds.
          { name: "AssetAdded", anonAddress: BUYER, assetID: 6n, powerW: -100n, start: 13n, end: 13n },
          { name: "AssetAdded", anonAddress: SELLER, assetID: 7n, powerW: 300n, start: 13n, end: 13n },
        ],
      },
      {
        number: 6,
        events: [{ name: "OfferPosted", offerID: 5n, assetID: 6n, priceMicroPerWInterval: 4n }],
      },
      {
        number: 7,
        events: [
          // A seller fills the buyer's bid with part of its asset.
          { name: "AssetSplit", parentID: 7n, assetID: 8n, owner: SELLER, powerW: 200n, start: 13n, end: 13n },
          { name: "OfferAccepted", offerID: 5n, assetID: 7n, payment: 300n },
        ],
      },
    ];
    const households = [[SELLER], [BUYER], [OTHER], [BUYER, OTHER], []];
    expect(compare(blocks, households)).to.equal(blocks.length * households.length);
    // The buyer's view never held the seller's unoffered assets or anyone else's balance.
    const buyer = new HouseholdMarketView({ isMine: (a) => a === BUYER });
    buyer.apply(blocks[0]?.events.map((ev, i) => ({ blockNumber: 1, logIndex: i, ev })) ?? [], (l) => l.ev);
    expect([...buyer.state.assets.keys()]).to.deep.equal([3n]);
    expect([...buyer.state.balances.keys()]).to.deep.equal([BUYER]);
    // The registry hears of every asset and forgets what was traded or deposited.
    const alone = new HouseholdMarketView({ isMine: (a) => a === BUYER });
    for (const b of blocks)
      alone.apply(
        b.events.map((ev, i) => ({ blockNumber: b.number, logIndex: i, ev })),
        (l) => l.ev,
      );
    // Only what can still be offered: the rescinded bid's asset 4 and the split part 8.
    expect(alone.registeredAssets).to.equal(2);
  });

  it("on a simulated market of 30 households, each household's view", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-view-"));
    await runSim({
      ...DAYTIME_30,
      outDir: dir,
      seed: 9,
      observer: false,
    });
    const ds = readDataset(path.join(dir, "ledger.jsonl"));
    const byBlock = new Map<number, MarketEvent[]>();
    for (const e of ds.events) {
      if (e.contract !== "market") continue;
      byBlock.set(e.blockNumber, [...(byBlock.get(e.blockNumber) ?? []), e.event as MarketEvent]);
    }
    const blocks = [...byBlock].sort(([a], [b]) => a - b).map(([number, events]) => ({ number, events }));
    const kinds = new Set(blocks.flatMap((b) => b.events.map((e) => e.name)));
    for (const k of ["AssetSplit", "OfferAccepted", "OfferRescinded", "AssetDeposited", "FinancialDeposited"])
      expect(kinds.has(k as MarketEvent["name"]), k).to.equal(true);
    const households = readGroundTruth(path.join(dir, "ground-truth.json")).households.map((h) => h.addresses);
    expect(households.length).to.equal(30);
    compare(blocks, households);
  });
});
