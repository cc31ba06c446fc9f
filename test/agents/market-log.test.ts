import { expect } from "chai";
import { type EventFragment, ZeroHash } from "ethers";
import { decodeMarketLog } from "../../agents/market-log";
import { createRng } from "../../common/rng";
import { EnergyMarket__factory } from "../../typechain-types";

const MARKET = EnergyMarket__factory.createInterface();
const ADDR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** Sample arguments by type, large and negative values included. */
function sample(type: string, i: number): unknown {
  if (type === "address") return ADDR;
  if (type === "bool") return i % 2 === 0;
  if (type === "int64") return i % 2 === 0 ? -(2n ** 62n) + BigInt(i) : BigInt(1000 + i);
  if (type === "uint64") return 2n ** 63n + BigInt(i);
  if (type === "uint256") return 2n ** 255n + BigInt(i);
  throw new Error(`no sample for ${type}`);
}

describe("decodeMarketLog # as ethers' Interface.parseLog", () => {
  it("decodes every market event to the same name and arguments, by position and by name", () => {
    const events: EventFragment[] = [];
    MARKET.forEachEvent((e) => events.push(e));
    expect(events.length).to.equal(10);
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

  it("agrees with parseLog on random words: any bits in uint and int words, addresses with and without high bits", () => {
    const rng = createRng(7);
    const hexWord = (zeroHigh: boolean) => {
      let w = "";
      for (let k = 0; k < 64; k++) w += zeroHigh && k < 24 ? "0" : "0123456789abcdef"[rng.int(0, 15)];
      // Small values and all-zero words too, not only huge ones.
      if (rng.next() < 0.2) w = `${"0".repeat(56)}${w.slice(56)}`;
      if (rng.next() < 0.05) w = "0".repeat(64);
      return w;
    };
    const events: EventFragment[] = [];
    MARKET.forEachEvent((e) => events.push(e));
    let refused = 0;
    for (let n = 0; n < 400; n++) {
      const e = events[n % events.length] as EventFragment;
      const words = e.inputs.map((p) => hexWord(p.type === "address" && rng.next() < 0.9));
      const topics = [e.topicHash, ...e.inputs.flatMap((p, i) => (p.indexed ? [`0x${words[i]}`] : []))];
      const data = `0x${e.inputs
        .filter((p) => !p.indexed)
        .map((p) => words[e.inputs.indexOf(p)])
        .join("")}`;
      const ours = decodeMarketLog({ topics, data });
      // parseLog defers a bad value's error to the moment it is read: such a log is refused.
      let theirs: ReturnType<typeof MARKET.parseLog> = null;
      try {
        theirs = MARKET.parseLog({ topics, data });
        theirs?.args.toArray();
      } catch {
        theirs = null;
      }
      if (theirs === null) refused++;
      expect(ours?.name ?? null, `${e.name} ${words.join(",")}`).to.equal(theirs?.name ?? null);
      expect(ours?.args.toArray(), e.name).to.deep.equal(theirs?.args.toArray());
    }
    // Some addresses had high bits: both refuse those logs.
    expect(refused).to.be.greaterThan(0);
  });
});
