import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { parseDelay } from "../../agents/sim/distribution";
import { loadScenario } from "../../analysis/scenario";
import { runSim, type SimRunOptions } from "../../analysis/sim-runner";
import { readDataset } from "../../attacks/dataset";
import { parseGroundTruth } from "../../attacks/ground-truth";
import { createRng } from "../../common/rng";
import { EnergyMarket__factory } from "../../typechain-types";
import { DAYTIME_30 } from "../fixtures/sim";

const MARKET = EnergyMarket__factory.createInterface();
const ACCEPT_SELECTOR = MARKET.getFunction("acceptOffer").selector;
const FUND_GAS_SELECTOR = MARKET.getFunction("fundGas").selector;
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
    // The DSO's answers say what gas it sent, so no household polls its balance; the DSO signs its
    // mints with gas limits from a formula (the one estimate is the market's deployment); the
    // households' latest nonces come from the node's memory of the blocks it sealed.
    const calls = s.throughput.rpcCallsByMethod;
    expect(calls.eth_getBalance).to.equal(undefined);
    expect(calls.eth_estimateGas?.calls ?? 0).to.be.at.most(1);
    expect(calls["eth_getTransactionCount (from the node's memory)"]?.calls).to.be.greaterThan(0);
    // Where the wall time went, by simulated interval: the lead interval and the two traded, in
    // order, with the transactions mined by then.
    const scenario = loadScenario("case-study-9");
    const entered = s.throughput.wallByInterval;
    expect(entered[0]?.interval).to.equal(scenario.firstInterval - scenario.file.prosumer.leadIntervals);
    expect(entered.length).to.be.at.least(scenario.file.prosumer.leadIntervals + 2);
    for (let i = 1; i < entered.length; i++) {
      expect(entered[i]?.interval).to.equal((entered[i - 1]?.interval as number) + 1);
      expect(entered[i]?.wallS).to.be.at.least(entered[i - 1]?.wallS as number);
      expect(entered[i]?.transactions).to.be.at.least(entered[i - 1]?.transactions as number);
      expect(entered[i]?.chainS).to.be.at.least(entered[i - 1]?.chainS as number);
      expect(entered[i]?.chainS).to.be.at.most(entered[i]?.wallS as number);
      expect(entered[i]?.heapMB).to.be.greaterThan(0);
    }
    expect(entered.at(-1)?.wallS).to.be.at.most(s.wall.tradingS);
    expect(entered.at(-1)?.chainS).to.be.at.most(s.throughput.tradingChainS);
    expect(s.throughput.tradingChainS).to.be.at.most(s.wall.tradingS);
    expect(entered.at(-1)?.transactions).to.be.at.most(s.transactions.total);
  });

  it("builds the ledger from the blocks as they are sealed, line for line what reading the chain back gives", async () => {
    // verifyLedger reads the chain back as `petra live` does and throws LEDGER_UNREADABLE on the first differing line.
    const dir = tmp("ledger");
    const s = await runSim({
      ...DAYTIME_30,
      outDir: dir,
      seed: 5,
      verifyLedger: true,
    });
    const ledger = readDataset(path.join(dir, "ledger.jsonl"));
    // Reverted transactions and value transfers (the DSO's fundGas, with a GasFunded each) are in
    // it too, with their receipts' status.
    expect(s.transactions.reverted).to.be.greaterThan(0);
    expect(ledger.transactions.filter((t) => t.status === 0).length).to.equal(s.transactions.reverted);
    const funding = ledger.transactions.filter((t) => t.selector === FUND_GAS_SELECTOR && t.valueWei > 0n);
    const funded = ledger.events.filter((e) => e.event.name === "GasFunded");
    expect(funding.length).to.be.greaterThan(0);
    expect(funded.length).to.be.greaterThan(funding.length);
    expect(new Set(funded.map((e) => e.txHash))).to.deep.equal(new Set(funding.map((t) => t.hash)));
    expect(ledger.events.length).to.be.greaterThan(0);
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

  it("backs consumers off after a lost race: far fewer reverted accepts, the same asks cleared", async () => {
    // 19:00: the sun is low, a few asks and a hundred consumers chasing them.
    const evening = { scenario: "generated-100", intervals: 1, windowStart: "19:00", blocks: "exp:8000", seed: 1 };
    const revertedAccepts = (dir: string) =>
      readDataset(path.join(dir, "ledger.jsonl")).transactions.filter(
        (t) => t.status !== 1 && t.selector === ACCEPT_SELECTOR,
      ).length;
    const [eager, patient] = [tmp("eager"), tmp("patient")];
    const e = await runSim({ ...evening, raceBackoff: 0, outDir: eager });
    const p = await runSim({ ...evening, raceBackoff: 4, outDir: patient });
    expect(revertedAccepts(eager)).to.be.greaterThan(100);
    expect(revertedAccepts(patient)).to.be.lessThan(revertedAccepts(eager) * 0.6);
    for (const s of [e, p]) {
      expect(s.offers.cleared).to.equal(s.offers.posted);
      expect(s.conservation.energyConserved && s.conservation.moneyConserved && s.allDrained).to.equal(true);
    }
    expect(JSON.parse(fs.readFileSync(path.join(patient, "config.json"), "utf8")).overrides.raceBackoff).to.equal(4);
  });

  it("starts a generated day at --window-start and writes the generator's ground truth for the intervals run", async () => {
    const dir = tmp("gen");
    const s = await runSim({
      scenario: "generated-100",
      households: 6,
      intervals: 2,
      windowStart: "11:00",
      blocks: "exp:5000",
      outDir: dir,
      seed: 2,
    });
    expect(s.intervals).to.equal(2);
    const truth = JSON.parse(fs.readFileSync(path.join(dir, "ground-truth.json"), "utf8"));
    expect(truth.firstInterval).to.equal(44);
    const scenario = loadScenario("generated-100");
    for (const h of truth.households) {
      const t = scenario.groundTruth?.[h.id];
      expect(t, h.id).to.not.equal(undefined);
      expect(h.occupancy).to.deep.equal([t?.occupancy[44], t?.occupancy[45]]);
      expect(h.occupancyState).to.deep.equal([t?.occupancyState[44], t?.occupancyState[45]]);
      expect(h.loadW).to.deep.equal([t?.loadW[44], t?.loadW[45]]);
      expect(h.pvW).to.deep.equal([t?.pvW[44], t?.pvW[45]]);
      expect(h.persons).to.equal(t?.persons);
    }
    // The scoring side reads it: occupancy is in the format the attack suite checks.
    expect(parseGroundTruth(truth).households[0]?.occupancy).to.have.length(2);
    // Midday in June: some household traded PV (the night-time start of the scenario has none).
    expect(s.offers.posted).to.be.greaterThan(0);
  });

  it("refuses a window start outside the scenario's window or off an interval boundary", async () => {
    for (const [windowStart, message] of [
      ["11:05", /windowStart: must fall on an interval boundary/],
      ["25:00", /windowStart: must be a time of day/],
    ] as const) {
      let err: Error | undefined;
      try {
        await runSim({ ...small, outDir: tmp("badwin"), seed: 1, windowStart });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message, windowStart).to.match(message);
    }
    let err: Error | undefined;
    try {
      await runSim({ ...small, outDir: tmp("badwin"), seed: 1, windowStart: "08:00" });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/windowStart: 08:00 is outside case-study-9's window/);
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

describe("simulated mode on anvil (petra sim --chain anvil)", function () {
  this.timeout(300_000);
  const small = { scenario: "case-study-9", intervals: 2, blocks: "exp:5000", chain: "anvil" as const };

  it("gives a byte-identical ledger for the same seed, and runs the agents to the end with everything conserved", async () => {
    const [a, b] = [tmp("anvil-a"), tmp("anvil-b")];
    const s = await runSim({ ...small, outDir: a, seed: 7 });
    await runSim({ ...small, outDir: b, seed: 7 });
    for (const f of ["ledger.jsonl", "records.jsonl", "observer.jsonl", "clearing-times.csv"])
      expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f).to.equal(true);
    expect(s.node).to.match(/anvil/);
    expect(JSON.parse(fs.readFileSync(path.join(a, "config.json"), "utf8")).chain.kind).to.equal("anvil");
    expect(s.withdrawals.accepted).to.equal(9 * 2);
    expect(s.offers.cleared).to.be.greaterThan(0);
    expect(s.conservation.energyConserved).to.equal(true);
    expect(s.conservation.moneyConserved).to.equal(true);
    expect(s.allDrained).to.equal(true);
    expect(readDataset(path.join(a, "ledger.jsonl")).transactions.length).to.equal(s.transactions.total);
  });

  it("ends the run with an error naming anvil when it dies mid-run", async () => {
    let pid: number | undefined;
    let killed = false;
    let lastFraction = 0;
    let err: Error | undefined;
    try {
      await runSim({
        ...small,
        intervals: 4,
        outDir: tmp("anvil-dies"),
        seed: 2,
        onChain: (c) => {
          pid = c.pid;
        },
        onProgress: (p) => {
          lastFraction = p.fraction;
          if (!killed && p.fraction > 0.3 && pid !== undefined) {
            killed = true;
            process.kill(pid, "SIGKILL");
          }
        },
      });
    } catch (e) {
      err = e as Error;
    }
    expect(killed).to.equal(true);
    expect(err?.message).to.match(
      new RegExp(`anvil \\(pid ${pid}\\), the simulated chain, was killed by SIGKILL during the run`),
    );
    // Ended soon after, in simulated time too: not at the scenario's deadline after every agent failed in turn.
    expect(lastFraction).to.be.lessThan(0.95);
  });

  it("refuses verifyLedger (anvil prunes the chain it would read back) and an unknown chain", async () => {
    const cases: [Partial<SimRunOptions>, RegExp][] = [
      [{ verifyLedger: true }, /verifyLedger: needs the whole chain, which anvil prunes/],
      [{ chain: "geth" as SimRunOptions["chain"] }, /chain: must be "edr" or "anvil", got "geth"/],
    ];
    for (const [opts, message] of cases) {
      let err: Error | undefined;
      try {
        await runSim({ ...small, ...opts, outDir: tmp("anvil-bad"), seed: 1 });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(message);
    }
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
