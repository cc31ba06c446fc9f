import { expect } from "chai";
import { pairwiseScores, pearson } from "../../attacks/metrics";

const m = (entries: Array<[string, string]>) => new Map(entries);

describe("metrics # pairwiseScores", () => {
  const truth = m([
    ["1", "a"],
    ["2", "a"],
    ["3", "a"],
    ["4", "b"],
    ["5", "b"],
    ["6", "b"],
  ]);

  it("scores a perfect clustering 1 everywhere", () => {
    const s = pairwiseScores(truth, truth);
    expect([s.precision, s.recall, s.f1, s.ari]).to.deep.equal([1, 1, 1, 1]);
  });

  it("scores all singletons with recall 0 and ARI 0", () => {
    const singletons = m([...truth.keys()].map((k) => [k, `c${k}`]));
    const s = pairwiseScores(singletons, truth);
    expect(s.recall).to.equal(0);
    expect(s.f1).to.equal(0);
    expect(s.ari).to.equal(0);
  });

  it("scores one big cluster with the base rate as precision and ARI 0", () => {
    const one = m([...truth.keys()].map((k) => [k, "c"]));
    const s = pairwiseScores(one, truth);
    expect(s.precision).to.be.closeTo(6 / 15, 1e-12);
    expect(s.recall).to.equal(1);
    expect(s.ari).to.be.closeTo(0, 1e-12);
  });

  it("matches a hand-computed adjusted Rand index", () => {
    const pred = m([
      ["1", "x"],
      ["2", "x"],
      ["3", "y"],
      ["4", "y"],
      ["5", "z"],
      ["6", "z"],
    ]);
    const s = pairwiseScores(pred, truth);
    // pairs together in both: 2; predicted: 3; actual: 6; of 15
    expect(s.precision).to.be.closeTo(2 / 3, 1e-12);
    expect(s.recall).to.be.closeTo(2 / 6, 1e-12);
    expect(s.ari).to.be.closeTo((2 - 1.2) / (4.5 - 1.2), 1e-12);
  });

  it("scores only addresses both sides know", () => {
    const s = pairwiseScores(
      m([
        ["1", "x"],
        ["9", "x"],
      ]),
      truth,
    );
    expect(s.addresses).to.equal(1);
  });
});

describe("metrics # pearson", () => {
  it("is 1 for a linear relation, -1 for an inverse one, null when undefined", () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).to.be.closeTo(1, 1e-12);
    expect(pearson([1, 2, 3], [3, 2, 1])).to.be.closeTo(-1, 1e-12);
    expect(pearson([1, 1, 1], [1, 2, 3])).to.equal(null);
    expect(pearson([1, 2], [1, 2])).to.equal(null);
  });
});
