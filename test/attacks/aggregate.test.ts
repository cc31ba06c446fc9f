import { expect } from "chai";
import { aggregateRuns, summarise } from "../../attacks/aggregate";

describe("aggregate # summarise", () => {
  it("gives the mean, sample sd and a t-based 95% interval", () => {
    const s = summarise([1, 2, 3]);
    expect(s.mean).to.equal(2);
    expect(s.sd).to.equal(1);
    expect(s.ci95[0]).to.be.closeTo(2 - (4.303 * 1) / Math.sqrt(3), 1e-9);
    expect(s.ci95[1]).to.be.closeTo(2 + (4.303 * 1) / Math.sqrt(3), 1e-9);
  });

  it("has no interval for a single run", () => {
    expect(Number.isNaN(summarise([5]).ci95[0])).to.equal(true);
  });
});

describe("aggregate # aggregateRuns", () => {
  it("summarises each numeric path over the runs that report it", () => {
    const agg = aggregateRuns([
      { combined: { linkage: { f1: 0.5 } }, x: null },
      { combined: { linkage: { f1: 0.7 } } },
    ]);
    expect(Object.keys(agg)).to.deep.equal(["combined.linkage.f1"]);
    expect(agg["combined.linkage.f1"]?.mean).to.be.closeTo(0.6, 1e-12);
    expect(agg["combined.linkage.f1"]?.n).to.equal(2);
  });
});
