import { expect } from "chai";
import { createRng } from "../../common/rng";

describe("rng # createRng", () => {
  it("repeats the same stream for the same seed and differs for another", () => {
    const a = Array.from({ length: 5 }, createRng(7).next);
    const r = createRng(7);
    expect(Array.from({ length: 5 }, () => r.next())).to.deep.equal(a);
    const other = createRng(8);
    expect(Array.from({ length: 5 }, () => other.next())).to.not.deep.equal(a);
  });

  it("gives forks that are reproducible and independent of the parent's position", () => {
    const r1 = createRng(1);
    r1.next();
    const f1 = r1.fork("household-3");
    const f2 = createRng(1).fork("household-3");
    expect(f1.next()).to.equal(f2.next());
    expect(createRng(1).fork("household-4").next()).to.not.equal(createRng(1).fork("household-3").next());
  });

  it("keeps int() within its inclusive bounds and hits both ends", () => {
    const r = createRng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(r.int(2, 5));
    expect([...seen].sort()).to.deep.equal([2, 3, 4, 5]);
  });

  it("draws exponential and normal samples with the requested mean", () => {
    const r = createRng(11);
    const n = 20_000;
    let e = 0;
    let g = 0;
    for (let i = 0; i < n; i++) {
      e += r.exponential(4);
      g += r.normal(10, 2);
    }
    expect(e / n).to.be.closeTo(4, 0.15);
    expect(g / n).to.be.closeTo(10, 0.05);
  });

  it("shuffles into a permutation, reproducibly", () => {
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    const a = createRng(5).shuffle(items);
    expect([...a].sort()).to.deep.equal(items);
    expect(createRng(5).shuffle(items)).to.deep.equal(a);
    expect(a).to.not.deep.equal(items);
  });

  it("rejects a seed outside [0, 2^32)", () => {
    expect(() => createRng(-1)).to.throw(RangeError, /seed/);
    expect(() => createRng(1.5)).to.throw(RangeError, /seed/);
  });
});
