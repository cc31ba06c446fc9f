import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { parseDelay } from "../../agents/sim/distribution";
import { runSim } from "../../analysis/sim-runner";
import { readDataset } from "../../attacks/dataset";
import { createRng } from "../../common/rng";

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `petra-sim-${name}-`));

describe("simulated mode (petra sim)", function () {
  this.timeout(300_000);
  const small = { scenario: "case-study-9", intervals: 2, blocks: "exp:5000" };

  it("gives a byte-identical ledger, records and observer log for the same seed and config", async () => {
    const [a, b] = [tmp("a"), tmp("b")];
    await runSim({ ...small, outDir: a, seed: 7 });
    await runSim({ ...small, outDir: b, seed: 7 });
    for (const f of ["ledger.jsonl", "records.jsonl", "observer.jsonl", "clearing-times.csv", "ground-truth.json"])
      expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f).to.equal(true);
  });

  it("runs the live agents to the end: trades clear, energy and money are conserved, everything is deposited", async () => {
    const dir = tmp("run");
    const s = await runSim({ ...small, outDir: dir, seed: 3 });
    expect(s.withdrawals.refused).to.equal(0);
    expect(s.withdrawals.accepted).to.equal(9 * 2);
    expect(s.offers.cleared).to.be.greaterThan(0);
    expect(s.conservation.energyConserved).to.equal(true);
    expect(s.conservation.moneyConserved).to.equal(true);
    expect(s.allDrained).to.equal(true);
    // The same run directory as live mode, readable by the attack suite.
    for (const f of [
      "config.json",
      "ledger.jsonl",
      "ground-truth.json",
      "clearing-times.csv",
      "summary.json",
      "dso-view.json",
    ])
      expect(fs.existsSync(path.join(dir, f)), f).to.equal(true);
    const ledger = readDataset(path.join(dir, "ledger.jsonl"));
    expect(ledger.transactions.length).to.equal(s.transactions.total);
    // Clearing takes block times: with 5 s mean blocks, no offer clears in under a block's tail.
    expect(s.clearingS.mean).to.be.greaterThan(1);
  });

  it("another seed gives another ledger", async () => {
    const [a, b] = [tmp("s1"), tmp("s2")];
    await runSim({ ...small, outDir: a, seed: 1 });
    await runSim({ ...small, outDir: b, seed: 2 });
    expect(
      fs.readFileSync(path.join(a, "ledger.jsonl")).equals(fs.readFileSync(path.join(b, "ledger.jsonl"))),
    ).to.equal(false);
  });

  it("slower blocks give slower clearing (the block-time model drives the clock)", async () => {
    const fast = await runSim({ ...small, blocks: "fixed:2000", outDir: tmp("fast"), seed: 5 });
    const slow = await runSim({ ...small, blocks: "fixed:20000", outDir: tmp("slow"), seed: 5 });
    expect(slow.clearingS.median).to.be.greaterThan(fast.clearingS.median * 3);
  });

  it("refuses a bad delay spec, naming the option", async () => {
    let err: Error | undefined;
    try {
      await runSim({ ...small, outDir: tmp("bad"), seed: 1, rpcLatency: "gamma:3" });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/rpcLatency: unknown delay kind "gamma"/);
  });
});

describe("delay specs", () => {
  it("parses each kind and draws from it reproducibly", () => {
    for (const spec of ["constant:5", "fixed:5", "exp:10", "uniform:1:3", "normal:5:1", "lognormal:3:0.5"]) {
      const d = parseDelay(spec, "x");
      const a = Array.from({ length: 5 }, () => d.sample(createRng(1)));
      const b = Array.from({ length: 5 }, () => d.sample(createRng(1)));
      expect(a).to.deep.equal(b);
      expect(a.every((v) => v >= 0)).to.equal(true);
    }
    expect(parseDelay("constant:5", "x").sample(createRng(1))).to.equal(5);
  });

  it("replays measured samples from a JSON file field, a JSON array or a CSV column", () => {
    const dir = tmp("samples");
    fs.writeFileSync(path.join(dir, "s.json"), JSON.stringify({ rpcMs: [2, 4] }));
    fs.writeFileSync(path.join(dir, "a.json"), JSON.stringify([7]));
    fs.writeFileSync(path.join(dir, "c.csv"), "id,clearing_s\n1,3\n2,3\n");
    const rng = createRng(3);
    const s = parseDelay(`samples:${path.join(dir, "s.json")}:rpcMs`, "x");
    expect(s.meanMs).to.equal(3);
    for (let i = 0; i < 20; i++) expect([2, 4]).to.include(s.sample(rng));
    expect(parseDelay(`samples:${path.join(dir, "a.json")}`, "x").sample(rng)).to.equal(7);
    expect(parseDelay(`samples:${path.join(dir, "c.csv")}:clearing_s`, "x", { scale: 1000 }).sample(rng)).to.equal(
      3000,
    );
    expect(() => parseDelay(`samples:${path.join(dir, "s.json")}:nope`, "blocks")).to.throw(
      /blocks: .*no array field "nope"/,
    );
    expect(() => parseDelay("exp:-1", "blocks")).to.throw(/blocks: "exp:-1"/);
  });
});
