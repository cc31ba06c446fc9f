import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { HouseholdRegistry } from "../../agents/household-registry";
import { anvilBinary, type NodeKind } from "../../agents/rpc-node-process";
import { readDsoView } from "../../analysis/attack-inputs";
import { type LiveSummary, runLive } from "../../analysis/live-runner";
import { dsoRegistry } from "../../analysis/run-results";
import { loadScenario } from "../../analysis/scenario";
import { runAttack } from "../../attacks/attack-runner";
import { type Dataset, parseObserverLog, readDataset } from "../../attacks/dataset";
import { parseGroundTruth } from "../../attacks/ground-truth";
import type { MarketEvent } from "../../attacks/market-replay";

const ZERO = "0x0000000000000000000000000000000000000000";

/** Alive and not a zombie (an orphan waits for init to reap it, which can take a moment in a container). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  for (let waited = 0; waited < withinMs; waited += 100) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

interface Run {
  dir: string;
  summary: LiveSummary;
  ledger: Dataset;
  config: { seed: number; processes: { name: string; pid: number }[]; rpcUrlUsed: string };
  truth: {
    households: {
      id: string;
      role: string;
      addresses: string[];
      pseudonyms: { address: string }[];
      withdrawals: { interval: number; address: string; forecastW: number; ok: boolean }[];
    }[];
  };
  clearingCsv: string[];
}

async function shortCaseStudy(node: NodeKind): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `petra-live-${node}-`));
  const summary = await runLive({
    scenario: "case-study-9",
    outDir: dir,
    seed: 5,
    node,
    intervals: 2,
    intervalMs: 4000,
    blocks: "automine",
  });
  const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
  return {
    dir,
    summary,
    ledger: readDataset(path.join(dir, "ledger.jsonl")),
    config: JSON.parse(read("config.json")),
    truth: JSON.parse(read("ground-truth.json")),
    clearingCsv: read("clearing-times.csv").trim().split("\n"),
  };
}

function events<N extends MarketEvent["name"]>(ledger: Dataset, name: N): Extract<MarketEvent, { name: N }>[] {
  return ledger.events
    .map((e) => e.event as MarketEvent)
    .filter((e): e is Extract<MarketEvent, { name: N }> => e.name === name);
}

type Shape = { powerW: bigint; start: bigint; end: bigint };

function checkRun(get: () => Run) {
  it("writes the run directory: config with the seed, ledger, ground truth, clearing times, summary", () => {
    const r = get();
    expect(r.config.seed).to.equal(5);
    for (const f of ["config.json", "ledger.jsonl", "ground-truth.json", "clearing-times.csv", "summary.json"]) {
      expect(fs.existsSync(path.join(r.dir, f)), f).to.equal(true);
    }
    expect(r.ledger.transactions.length).to.be.above(20);
    for (const e of [...r.ledger.transactions, ...r.ledger.events]) {
      expect(e.blockNumber).to.be.a("number");
      expect(e.timestamp).to.be.above(0);
    }
    // The attack suite's own parser accepts the ground truth: `petra attack --truth` can score the run.
    const truth = parseGroundTruth(r.truth);
    expect(truth.households).to.have.length(9);
    expect(truth.firstInterval).to.equal(57);
  });

  it("conserves energy per interval and direction, and money, with everything handed back", () => {
    const { ledger, summary } = get();
    const shape = new Map<bigint, Shape>();
    const minted = new Map<string, bigint>();
    const returned = new Map<string, bigint>();
    const add = (m: Map<string, bigint>, s: Shape) => {
      for (let k = s.start; k <= s.end; k++) {
        const key = `${k}/${s.powerW > 0n ? "+" : "-"}`;
        m.set(key, (m.get(key) ?? 0n) + s.powerW);
      }
    };
    for (const e of ledger.events.map((x) => x.event as MarketEvent)) {
      if (e.name === "AssetAdded" || e.name === "AssetSplit") shape.set(e.assetID, e);
      if (e.name === "AssetAdded") add(minted, e);
      if (e.name === "AssetDeposited") add(returned, shape.get(e.assetID) as Shape);
    }
    expect(minted.size).to.be.above(0);
    expect(returned).to.deep.equal(minted);
    const sum = (list: { amount: bigint }[]) => list.reduce((s, e) => s + e.amount, 0n);
    expect(sum(events(ledger, "FinancialAdded"))).to.be.above(0n);
    expect(sum(events(ledger, "FinancialDeposited"))).to.equal(sum(events(ledger, "FinancialAdded")));
    expect(summary.conservation.energyConserved).to.equal(true);
    expect(summary.conservation.assetsStillHeld).to.equal(0);
    expect(summary.allDrained).to.equal(true);
  });

  it("clears offers: every consumer's forecast need is bought in every interval", () => {
    const r = get();
    expect(r.summary.withdrawals.refused).to.equal(0);
    expect(r.summary.offers.cleared).to.be.at.least(7 * 2);
    expect(r.clearingCsv.length - 1).to.equal(r.summary.offers.cleared);
    expect(events(r.ledger, "OfferAccepted")).to.have.length(r.summary.offers.cleared);
    const bought = new Map<string, bigint>();
    for (const e of events(r.ledger, "AssetSplit")) {
      if (e.powerW > 0n) bought.set(`${e.owner}/${e.start}`, (bought.get(`${e.owner}/${e.start}`) ?? 0n) + e.powerW);
    }
    const consumers = r.truth.households.filter((h) => h.role === "consumer");
    expect(consumers).to.have.length(7);
    for (const h of consumers) {
      expect(h.withdrawals).to.have.length(2);
      for (const w of h.withdrawals) {
        expect(w.ok).to.equal(true);
        expect(bought.get(`${w.address}/${w.interval}`), `${h.id} interval ${w.interval}`).to.equal(
          BigInt(-w.forecastW),
        );
      }
    }
    expect(r.summary.clearingS.count).to.equal(r.summary.offers.cleared);
    expect(r.summary.clearingS.mean).to.be.above(0);
  });

  it("gives the attack suite what it needs: an observer log that links households in direct mode, the DSO's view", () => {
    const r = get();
    const truth = parseGroundTruth(r.truth);
    const ds = readDataset(path.join(r.dir, "ledger.jsonl"));
    ds.observer.push(...parseObserverLog(fs.readFileSync(path.join(r.dir, "observer.jsonl"), "utf8").split("\n")));
    const submitted = ds.observer.filter((o) => o.txFrom);
    expect(submitted.length, "transactions the observer saw").to.be.above(20);
    // every household sends from its own loopback address (the DSO from 127.0.0.1), so the source
    // links all of a household's pseudonyms
    const fromHouseholds = submitted.filter((o) => o.txFrom?.toLowerCase() !== ds.header.dso.toLowerCase());
    expect(fromHouseholds.length).to.be.above(10);
    for (const o of fromHouseholds) expect(o.source).to.match(/^127\.0\.0\.(?!1$)\d+$/);
    const byObserver = runAttack(ds, { truth, heuristics: ["network-observer"] }).scores?.combined?.linkage;
    expect(byObserver?.precision).to.equal(1);
    const dsoView = readDsoView(path.join(r.dir, "dso-view.json"));
    const byDso = runAttack(ds, { truth, heuristics: ["dso-view"], knowledge: { dsoView } }).scores?.combined?.linkage;
    expect(byDso?.precision).to.equal(1);
    expect(byDso?.recall).to.be.at.least(byObserver?.recall ?? 0);
  });

  it("puts only pseudonyms from the ground truth on chain, and stops every process it started", () => {
    const r = get();
    const known = new Set(r.truth.households.flatMap((h) => h.pseudonyms.map((p) => p.address)));
    for (const e of events(r.ledger, "AssetAdded")) expect(known.has(e.anonAddress)).to.equal(true);
    for (const e of events(r.ledger, "AssetSplit")) expect(e.owner === ZERO || known.has(e.owner)).to.equal(true);
    for (const h of r.truth.households) for (const p of h.pseudonyms) expect(h.addresses).to.include(p.address);
    expect(r.config.processes.length).to.equal(1 + 1 + 9);
    for (const p of r.config.processes) expect(alive(p.pid), `${p.name} ${p.pid} still running`).to.equal(false);
  });
}

describe("live runner # DSO registry", () => {
  for (const name of ["case-study-9", "microgrid-102"]) {
    it(`gives the DSO a registry it accepts for ${name}, with room for every forecast`, () => {
      const scenario = loadScenario(name);
      const keyOf = (id: string) => Buffer.from(id.padEnd(32, ".").slice(0, 32)).toString("hex");
      const registry = new HouseholdRegistry(dsoRegistry(scenario, keyOf, scenario.intervalCount));
      expect(registry.allHouseholds()).to.have.length(scenario.households.length);
      for (const h of scenario.households) {
        const r = registry.household(h.id);
        const feeder = registry.feeder(h.feeder);
        for (const w of Object.values(h.trueNetW)) {
          if (w > 0) expect(w).to.be.at.most(r?.pvCapacityW ?? 0);
          else expect(-w).to.be.at.most(r?.connectionLimitW ?? 0);
          expect(Math.abs(w)).to.be.at.most(feeder?.ratingW ?? 0);
        }
      }
    });
  }
});

describe("live runner # case study on hardhat node (real processes, ZeroMQ, JSON-RPC)", function () {
  this.timeout(120_000);
  let run: Run;
  before(async () => {
    run = await shortCaseStudy("hardhat");
  });
  checkRun(() => run);
});

describe("live runner # the same run on anvil", function () {
  this.timeout(120_000);
  let run: Run;
  before(async () => {
    // A devDependency: a missing binary is a broken install, not a reason to skip.
    if (!anvilBinary()) throw new Error("anvil: @foundry-rs/anvil is not installed (npm install)");
    run = await shortCaseStudy("anvil");
  });
  checkRun(() => run);
});

describe("live runner # Ctrl-C", function () {
  this.timeout(120_000);

  it("stops the node, the DSO and every household by PID when interrupted mid-run", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-live-sigint-"));
    const root = path.join(__dirname, "..", "..");
    const script = `require(${JSON.stringify(path.join(root, "analysis", "live-runner.ts"))}).runLive({ scenario: "case-study-9", outDir: ${JSON.stringify(dir)}, seed: 2, intervals: 14, intervalMs: 4000 }).then(() => process.exit(0), () => process.exit(1));`;
    const runner = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
      cwd: root,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true", TS_NODE_PROJECT: path.join(root, "tsconfig.json") },
      stdio: "ignore",
    });
    const exited = new Promise<number | null>((resolve) =>
      runner.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))),
    );
    // config.json lists the processes once every household is up and trading has begun.
    let pids: { name: string; pid: number }[] = [];
    for (let i = 0; i < 900 && pids.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        pids = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).processes ?? [];
      } catch {
        // not written yet
      }
    }
    expect(pids.length, "the run never started").to.equal(11);
    for (const p of pids) expect(alive(p.pid), `${p.name} should be running`).to.equal(true);
    await new Promise((r) => setTimeout(r, 1500));
    runner.kill("SIGINT");
    expect(await exited).to.equal(130);
    for (const p of pids) expect(await gone(p.pid, 5000), `${p.name} (${p.pid}) survived Ctrl-C`).to.equal(true);
  });
});
