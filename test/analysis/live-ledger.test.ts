import { expect } from "chai";
import { conservation } from "../../analysis/live-ledger";
import type { MarketEvent } from "../../attacks/market-replay";

const P = "0x00000000000000000000000000000000000000A1";
const C = "0x00000000000000000000000000000000000000B1";

/** A producer's +5000 W and a consumer's -3000 W in interval 57, traded, then all handed back. */
function tradedAndDeposited(): MarketEvent[] {
  return [
    { name: "AssetAdded", anonAddress: P, assetID: 0n, powerW: 5000n, start: 57n, end: 57n },
    { name: "AssetAdded", anonAddress: C, assetID: 1n, powerW: -3000n, start: 57n, end: 57n },
    { name: "FinancialAdded", anonAddress: C, amount: 3000n },
    { name: "OfferPosted", offerID: 0n, assetID: 0n, priceMicroPerWInterval: 1n },
    { name: "OfferAccepted", offerID: 0n, assetID: 1n, payment: 3000n },
    { name: "AssetSplit", parentID: 0n, assetID: 2n, owner: C, powerW: 3000n, start: 57n, end: 57n },
    { name: "AssetSplit", parentID: 0n, assetID: 3n, owner: P, powerW: 2000n, start: 57n, end: 57n },
    { name: "AssetSplit", parentID: 1n, assetID: 4n, owner: P, powerW: -3000n, start: 57n, end: 57n },
    { name: "AssetDeposited", anonAddress: C, assetID: 2n },
    { name: "AssetDeposited", anonAddress: P, assetID: 3n },
    { name: "AssetDeposited", anonAddress: P, assetID: 4n },
    { name: "FinancialDeposited", anonAddress: P, amount: 3000n },
  ];
}

describe("live ledger # conservation", () => {
  it("holds for a trade whose parts are all handed back", () => {
    const c = conservation(tradedAndDeposited());
    expect(c.energyConserved).to.equal(true);
    expect(c.moneyConserved).to.equal(true);
    expect(c.assetsStillHeld).to.equal(0);
    expect(c.energy).to.deep.equal([
      {
        interval: 57,
        mintedProductionW: "5000",
        returnedProductionW: "5000",
        mintedConsumptionW: "3000",
        returnedConsumptionW: "3000",
      },
    ]);
  });

  it("counts what is still held as returned, and reports it", () => {
    const events = tradedAndDeposited().filter((e) => !(e.name === "AssetDeposited" && e.assetID === 3n));
    const c = conservation(events);
    expect(c.energyConserved).to.equal(true);
    expect(c.assetsStillHeld).to.equal(1);
  });

  it("fails when a split creates energy", () => {
    const events = tradedAndDeposited().map((e) =>
      e.name === "AssetSplit" && e.assetID === 3n ? { ...e, powerW: 2500n } : e,
    );
    expect(conservation(events).energyConserved).to.equal(false);
  });

  it("fails when a deposit hands back money nobody had", () => {
    const events = tradedAndDeposited().map((e) => (e.name === "FinancialDeposited" ? { ...e, amount: 3001n } : e));
    expect(conservation(events).moneyConserved).to.equal(false);
  });
});
