import { expect } from "chai";
import { Forecast } from "../../agents/forecast";
import { createRng } from "../../common/rng";

const profile = new Map<number, number>([
  [57, -8800],
  [58, 0],
  [59, 79_500],
  [60, -9100],
]);

describe("Forecast", () => {
  it("is the true profile when the error is zero", () => {
    const f = new Forecast({ trueNetW: profile, rng: createRng(1) });
    for (const [k, w] of profile) expect(f.netW(k)).to.equal(w);
    expect(f.netW(99)).to.equal(0);
  });

  it("is reproducible from its seed and differs between seeds", () => {
    const a = new Forecast({ trueNetW: profile, errorRelativeSd: 0.1, rng: createRng(3) });
    const b = new Forecast({ trueNetW: profile, errorRelativeSd: 0.1, rng: createRng(3) });
    const c = new Forecast({ trueNetW: profile, errorRelativeSd: 0.1, rng: createRng(4) });
    const at = (f: Forecast) => [57, 58, 59, 60].map((k) => f.netW(k));
    expect(at(a)).to.deep.equal(at(b));
    expect(at(a)).to.not.deep.equal(at(c));
  });

  it("keeps zero at zero, keeps the sign, and rounds to whole watts", () => {
    for (let seed = 0; seed < 50; seed++) {
      const f = new Forecast({ trueNetW: profile, errorRelativeSd: 0.8, rng: createRng(seed) });
      expect(f.netW(58)).to.equal(0);
      expect(f.netW(57)).to.be.at.most(0);
      expect(f.netW(59)).to.be.at.least(0);
      expect(Number.isInteger(f.netW(60))).to.equal(true);
    }
  });

  it("has the configured relative spread", () => {
    const flat = new Map(Array.from({ length: 4000 }, (_, i) => [i, 10_000] as [number, number]));
    const f = new Forecast({ trueNetW: flat, errorRelativeSd: 0.1, rng: createRng(11) });
    const rel = f.intervals().map((k) => f.netW(k) / 10_000 - 1);
    const mean = rel.reduce((s, x) => s + x, 0) / rel.length;
    const sd = Math.sqrt(rel.reduce((s, x) => s + (x - mean) ** 2, 0) / (rel.length - 1));
    expect(Math.abs(mean)).to.be.below(0.01);
    expect(sd).to.be.within(0.09, 0.11);
  });

  it("never forecasts beyond the PV capacity or the connection limit", () => {
    const f = new Forecast({
      trueNetW: profile,
      errorRelativeSd: 0.5,
      maxProductionW: 80_000,
      maxConsumptionW: 9_000,
      rng: createRng(5),
    });
    for (const k of f.intervals()) expect(f.netW(k)).to.be.within(-9_000, 80_000);
  });

  it("rejects a negative error naming the option", () => {
    expect(() => new Forecast({ trueNetW: profile, errorRelativeSd: -1, rng: createRng(1) })).to.throw(
      /errorRelativeSd/,
    );
  });
});
