import { expect } from "chai";
import { runAttack } from "../../attacks/attack-runner";
import type { GroundTruth } from "../../attacks/ground-truth";
import { addr, DSO, LedgerBuilder } from "../../attacks/ledger-builder";
import { createRng } from "../../common/rng";

const HOUSEHOLDS = 10;
const INTERVALS = 14;

/**
 * A synthetic day: each household's forecast per interval is minted to an address chosen by the
 * pseudonym policy, funded by the household's main address (naive) or by the DSO.
 */
function world(opts: {
  policy: "single" | "fresh";
  funding: "household" | "dso";
  seed: number;
  sharedDistribution: boolean;
}) {
  const rng = createRng(opts.seed);
  const b = new LedgerBuilder();
  const truth: GroundTruth = { version: 1, firstInterval: 0, households: [] };
  const profiles = Array.from({ length: HOUSEHOLDS }, (_, h) => {
    const scale = opts.sharedDistribution ? 1000 : 200 * (h + 1);
    return Array.from({ length: INTERVALS }, () => -Math.round(scale * (0.5 + rng.next())));
  });
  for (let h = 0; h < HOUSEHOLDS; h++) {
    const main = addr(`h${h}-main`);
    truth.households.push({
      id: `h${h}`,
      addresses: [main],
      role: "consumer",
      netW: profiles[h],
      occupancy: profiles[h]!.map(() => 1),
    });
  }
  for (let t = 0; t < INTERVALS; t++) {
    // households act in a random order each interval, as independent agents would
    const order = rng.shuffle(Array.from({ length: HOUSEHOLDS }, (_, h) => h));
    for (const h of order) {
      const anon = addr(opts.policy === "single" ? `h${h}-anon` : `h${h}-t${t}`);
      const hh = truth.households[h]!;
      if (!hh.addresses.includes(anon)) {
        hh.addresses.push(anon);
        b.fund(opts.funding === "dso" ? DSO : hh.addresses[0]!, anon);
      }
      b.mint([{ to: anon, powerW: profiles[h]![t]!, start: t }]).call(anon);
    }
  }
  return { ds: b.build(), truth };
}

describe("attack-runner # runAttack", () => {
  it("links every pseudonym of a household when the household funds its own pseudonyms", () => {
    const { ds, truth } = world({ policy: "fresh", funding: "household", seed: 1, sharedDistribution: true });
    const r = runAttack(ds, { truth, heuristics: ["gas-funding"] });
    expect(r.scores?.combined?.linkage.ari).to.equal(1);
  });

  it("scores near chance where the defence works: fresh pseudonyms, DSO-funded gas, no observer", () => {
    const ari: number[] = [];
    const precision: number[] = [];
    for (const seed of [1, 2, 3]) {
      const { ds, truth } = world({ policy: "fresh", funding: "dso", seed, sharedDistribution: true });
      const s = runAttack(ds, { truth }).scores?.combined?.linkage;
      ari.push(s!.ari);
      precision.push(s!.precision);
    }
    // base rate of same-household pairs among the anonymous addresses is about 1 in 10
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
    expect(Math.abs(mean(ari))).to.be.lessThan(0.05);
    expect(mean(precision)).to.be.lessThan(0.25);
  });

  it("never lets the ground truth change what the attack infers", () => {
    const { ds, truth } = world({ policy: "fresh", funding: "dso", seed: 4, sharedDistribution: false });
    const blind = runAttack(ds);
    const scored = runAttack(ds, { truth });
    expect([...scored.clustering.clusterOf]).to.deep.equal([...blind.clustering.clusterOf]);
    expect(scored.links).to.deep.equal(blind.links);
  });

  it("re-identifies a single-address household from its load profile far above chance", () => {
    const { ds, truth } = world({ policy: "single", funding: "dso", seed: 5, sharedDistribution: false });
    // one address per household and nothing linking households: the profile alone does the work
    const r = runAttack(ds, { truth, heuristics: ["gas-funding"] }).scores?.combined?.reidentification;
    expect(r?.top1).to.be.greaterThan(0.9);
    expect(r?.chanceTop1).to.equal(1 / HOUSEHOLDS);
  });

  it("infers occupancy, role and PV size from a household's trades", () => {
    const home = addr("home");
    const b = new LedgerBuilder();
    const netW = [-200, -210, -1800, -1500, -190, -2200, -205, -200];
    netW.forEach((w, t) => {
      b.mint([{ to: home, powerW: w, start: t }]);
    });
    const sun = addr("sun");
    [1200, 4800, 3000].forEach((w, t) => {
      b.mint([{ to: sun, powerW: w, start: t }]);
    });
    const truth: GroundTruth = {
      version: 1,
      firstInterval: 0,
      households: [
        { id: "home", addresses: [home], role: "consumer", netW, occupancy: [0, 0, 1, 1, 0, 1, 0, 0] },
        { id: "sun", addresses: [sun], role: "producer", pvCapacityW: 5000, netW: [1200, 4800, 3000] },
      ],
    };
    const u = runAttack(b.build(), { truth }).scores?.combined?.usage;
    expect(u?.occupancyAccuracy).to.equal(1);
    expect(u?.roleAccuracy).to.equal(1);
    expect(u?.pvMaeW).to.equal(200);
    expect(u?.loadMaeW).to.equal(0);
  });

  it("names an unknown heuristic", () => {
    const { ds } = world({ policy: "single", funding: "dso", seed: 1, sharedDistribution: true });
    expect(() => runAttack(ds, { heuristics: ["nope" as never] })).to.throw(/unknown heuristic "nope"/);
  });
});
