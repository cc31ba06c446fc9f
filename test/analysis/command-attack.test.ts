import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { writeDataset } from "../../attacks/dataset";
import { addr, LedgerBuilder } from "../../attacks/ledger-builder";
import { petra } from "../fixtures/petra-cli";

describe("cli # petra attack", function () {
  this.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-attack-"));
  const run = path.join(dir, "run");
  const truthFile = path.join(dir, "ground-truth.json");

  before(() => {
    // two households; each funds its own two pseudonyms (the naive gas mode): gas funding links them all
    const b = new LedgerBuilder();
    const truth = {
      version: 1,
      firstInterval: 0,
      households: [] as Array<{ id: string; addresses: string[]; netW: number[] }>,
    };
    for (const h of ["h1", "h2"]) {
      const main = addr(`${h}-main`);
      const anons = [addr(`${h}-a0`), addr(`${h}-a1`)];
      anons.forEach((a, t) => {
        b.fund(main, a).mint([{ to: a, powerW: h === "h1" ? -500 - t : -3000 - t, start: t }]);
      });
      truth.households.push({ id: h, addresses: [main, ...anons], netW: h === "h1" ? [-500, -501] : [-3000, -3001] });
    }
    fs.mkdirSync(run);
    writeDataset(path.join(run, "ledger.jsonl"), b.build());
    fs.writeFileSync(truthFile, JSON.stringify(truth));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes attack.json, clusters.csv, links.csv and profiles.csv and scores against the truth", async () => {
    const out = path.join(dir, "out");
    const r = await petra("attack", "--run", run, "--truth", truthFile, "--out", out);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(fs.readFileSync(path.join(out, "attack.json"), "utf8"));
    expect(report.scores.combined.linkage.ari).to.equal(1);
    expect(report.scores["gas-funding"].linkage.ari).to.equal(1);
    expect(report.literature.reidentificationTop1.value).to.equal(0.545);
    const clusters = fs.readFileSync(path.join(out, "clusters.csv"), "utf8").trim().split("\n");
    expect(clusters[0]).to.equal("address,cluster,confidence");
    expect(clusters).to.have.length(1 + 6);
    expect(fs.readFileSync(path.join(out, "profiles.csv"), "utf8")).to.match(
      /^cluster,interval,inferredNetW,inferredOccupied\n/,
    );
  });

  it("switches heuristics off", async () => {
    const out = path.join(dir, "out-off");
    const r = await petra("attack", "--run", run, "--truth", truthFile, "--without", "gas-funding", "--out", out);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(fs.readFileSync(path.join(out, "attack.json"), "utf8"));
    expect(report.config.heuristics).to.not.include("gas-funding");
    expect(report.scores.combined.linkage.recall).to.be.lessThan(1);
  });

  it("attacks several runs and summarises each metric with a 95% interval", async () => {
    const out = path.join(dir, "out-many");
    const r = await petra("attack", "--run", run, run, "--truth", truthFile, truthFile, "--out", out);
    expect(r.code, r.stderr).to.equal(0);
    const summary = JSON.parse(fs.readFileSync(path.join(out, "attack-summary.json"), "utf8"));
    expect(summary.runs).to.have.length(2);
    expect(summary.metrics["combined.linkage.ari"]).to.deep.equal({ n: 2, mean: 1, sd: 0, ci95: [1, 1] });
    expect(fs.existsSync(path.join(out, "run", "attack.json"))).to.equal(true);
    expect(fs.existsSync(path.join(out, "run-1", "attack.json"))).to.equal(true);
    const mismatched = await petra("attack", "--run", run, run, "--truth", truthFile, "--out", out);
    expect(mismatched.stderr).to.match(/--truth: give one per --run \(2\), got 1/);
  });

  it("gives a clear error for a ledger it cannot read and for bad options", async () => {
    const broken = path.join(dir, "broken");
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, "ledger.jsonl"), '{"kind":"header","version":7}\n');
    const r = await petra("attack", "--run", broken, "--out", path.join(dir, "x"));
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/ledger\.jsonl:1: invalid header: field "version"/);
    const both = await petra("attack", "--out", path.join(dir, "y"));
    expect(both.stderr).to.match(/exactly one of --run DIR or --rpc URL/);
    const unknown = await petra("attack", "--run", run, "--heuristics", "tea-leaves", "--out", path.join(dir, "z"));
    expect(unknown.stderr).to.match(/unknown heuristic "tea-leaves"/);
  });
});
