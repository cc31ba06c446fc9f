import { expect } from "chai";
import { type EventFragment, ZeroHash } from "ethers";
import { decodeMarketLog } from "../../agents/market-log";
import { EnergyMarket__factory } from "../../typechain-types";

const MARKET = EnergyMarket__factory.createInterface();
const ADDR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** Sample arguments by type, large and negative values included. */
function sample(type: string, i: number): unknown {
  if (type === "address") return ADDR;
  if (type === "bool") return i % 2 === 0;
  if (type === "int64") return i % 2 === 0 ? -(2n ** 62n) + BigInt(i) : BigInt(1000 + i);
  if (type === "uint64") return 2n ** 63n + BigInt(i);
  throw new Error(`no sample for ${type}`);
}

describe("decodeMarketLog # as ethers' Interface.parseLog", () => {
  it("decodes every market event to the same name and arguments, by position and by name", () => {
    const events: EventFragment[] = [];
    MARKET.forEachEvent((e) => events.push(e));
    expect(events.length).to.equal(9);
    for (const e of events) {
      const values = e.inputs.map((p, i) => sample(p.type, i));
      const log = MARKET.encodeEventLog(e, values);
      const ours = decodeMarketLog(log);
      const theirs = MARKET.parseLog(log);
      expect(ours?.name, e.name).to.equal(theirs?.name);
      expect(ours?.args.toArray(), e.name).to.deep.equal(theirs?.args.toArray());
      expect(ours?.args.toObject(), e.name).to.deep.equal(theirs?.args.toObject());
    }
  });

  it("gives null for another contract's event, a missing topic and data that does not decode", () => {
    const posted = MARKET.getEvent("OfferPosted");
    const log = MARKET.encodeEventLog(posted, [1n, 2n, 3n]);
    expect(decodeMarketLog({ topics: [ZeroHash, ...log.topics.slice(1)], data: log.data })).to.equal(null);
    expect(decodeMarketLog({ topics: log.topics.slice(0, 2), data: log.data })).to.equal(null);
    expect(decodeMarketLog({ topics: log.topics, data: "0x12" })).to.equal(null);
    expect(decodeMarketLog({ topics: [], data: "0x" })).to.equal(null);
    expect(decodeMarketLog(log)?.args.priceMicroPerWInterval).to.equal(3n);
  });
});
