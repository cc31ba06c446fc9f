import { expect } from "chai";
import { clearingCsv, clearingRows, distribution, type HouseholdRecord } from "../../analysis/clearing-times";

const tx = (
  household: string,
  action: "post" | "accept",
  offerID: string,
  sentAtMs: number,
  doneAtMs: number,
  ok = true,
): HouseholdRecord => ({
  household,
  kind: "tx",
  action,
  from: `0x${household}`,
  sentAtMs,
  doneAtMs,
  ok,
  offerID,
});

describe("clearing times # join", () => {
  it("measures postOffer sent to the acceptOffer that cleared it, ignoring failed accepts and uncleared offers", () => {
    const records = [
      tx("p1", "post", "0", 1_000, 1_200),
      tx("p1", "post", "1", 2_000, 2_100),
      tx("c1", "accept", "0", 1_300, 1_900, false),
      tx("c2", "accept", "0", 1_400, 4_500),
      tx("p2", "post", "2", 3_000, 3_300),
    ];
    const { rows, postedOffers } = clearingRows(records);
    expect(postedOffers).to.equal(3);
    expect(rows).to.deep.equal([
      { offerID: "0", poster: "p1", accepter: "c2", postSentAtMs: 1_000, acceptMinedAtMs: 4_500, clearingS: 3.5 },
    ]);
    expect(clearingCsv(rows).trim().split("\n")).to.deep.equal([
      "offer_id,poster,accepter,post_sent_at_ms,accept_mined_at_ms,clearing_s",
      "0,p1,c2,1000,4500,3.500",
    ]);
  });
});

describe("clearing times # distribution", () => {
  it("computes mean, median, nearest-rank p90, max and sample variance", () => {
    const d = distribution([4, 1, 3, 2, 10, 6, 5, 8, 7, 9]);
    expect(d).to.deep.equal({ count: 10, mean: 5.5, median: 5.5, p90: 9, max: 10, variance: 55 / 6 });
    expect(distribution([2, 9, 4]).median).to.equal(4);
  });

  it("is NaN for no samples, zero variance for one", () => {
    expect(Number.isNaN(distribution([]).mean)).to.equal(true);
    expect(distribution([3]).variance).to.equal(0);
  });
});
