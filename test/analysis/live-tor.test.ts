import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { type ObservedTransaction, readObserverLog } from "../../agents/network-observer";
import { torAvailable } from "../../agents/tor/tor-network";
import { loopbackAddressFor } from "../../agents/transport-direct";
import { liveCommand, torOptionsFromFlags } from "../../analysis/command-live";
import { type LiveSummary, runLive } from "../../analysis/live-runner";
import { type Dataset, readDataset } from "../../attacks/dataset";
import { isError } from "../../common/errors";

const ROOT = path.join(__dirname, "..", "..");

/**
 * case-study-9 cut to one producer (column "1/2", 79.7 kW of PV) and one consumer (column "4/5"):
 * the smallest market in which offers clear. With `--households 2` the scenario's first two
 * households are both consumers, so nothing would trade. The data are the case study's own.
 */
function writePairScenario(dir: string): string {
  const rows = fs
    .readFileSync(path.join(ROOT, "data/petra/case-study-9-actors.csv"), "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split(","));
  const header = rows[0] as string[];
  const keep = [0, header.indexOf("1/2"), header.indexOf("4/5")];
  expect(keep).to.not.include(-1);
  const csv = path.join(dir, "pair.csv");
  fs.writeFileSync(csv, `${rows.map((r) => keep.map((i) => r[i]).join(",")).join("\n")}\n`);
  const scenario = JSON.parse(fs.readFileSync(path.join(ROOT, "scenarios/case-study-9.json"), "utf8"));
  const file = path.join(dir, "case-study-9-pair.json");
  fs.writeFileSync(
    file,
    JSON.stringify({ ...scenario, name: "case-study-9-pair", profile: { ...scenario.profile, file: csv } }),
  );
  return file;
}

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

describe("live runner # --tor (a private Tor network, onion services, a circuit per pseudonym)", function () {
  this.timeout(150_000);
  let dir: string;
  let summary: LiveSummary;
  let ledger: Dataset;
  let config: { processes: { name: string; pid: number }[]; transport: { kind: string; torPids: number[] } };

  before(async function () {
    if (!torAvailable()) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-live-tor-"));
    summary = await runLive({
      scenario: writePairScenario(dir),
      outDir: path.join(dir, "run"),
      seed: 5,
      intervals: 2,
      intervalMs: 4000,
      blocks: "automine",
      tor: {},
    });
    ledger = readDataset(path.join(dir, "run", "ledger.jsonl"));
    config = JSON.parse(fs.readFileSync(path.join(dir, "run", "config.json"), "utf8"));
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("records the transport in config and summary: private network, onion route, pseudonym isolation", () => {
    const t = summary.transport;
    expect(t?.kind).to.equal("tor");
    if (t?.kind !== "tor") return;
    expect(t.tor).to.equal("private");
    expect(t.route).to.equal("onion");
    expect(t.isolation).to.equal("pseudonym");
    expect(t.onionServices?.rpc).to.match(/^[a-z2-7]{56}\.onion$/);
    expect(t.onionServices?.dso).to.match(/^[a-z2-7]{56}\.onion$/);
    expect(t.bootstrapS).to.be.above(0);
    expect(config.transport.kind).to.equal("tor");
    const household = JSON.parse(fs.readFileSync(path.join(dir, "run", "agents", "f1-h2-c1.config.json"), "utf8"));
    expect(household.transport.kind).to.equal("tor");
    expect(household.transport.onionRoutes).to.not.deep.equal({});
  });

  it("sends the households' market transactions through Tor, and they are mined: offers clear", () => {
    const t = summary.transport;
    if (t?.kind !== "tor") throw new Error("not a Tor run");
    expect(summary.offers.cleared).to.be.at.least(2);
    expect(summary.withdrawals.refused).to.equal(0);
    const inv = t.inventory;
    expect(inv.transactions.sent).to.be.above(4);
    expect(inv.transactions.mined).to.equal(inv.transactions.sent);
    expect(inv.transactions.lost).to.deep.equal([]);
    // Every request of every household went through its TorTransport: a circuit per pseudonym plus
    // one per household.
    expect(inv.rpc.householdsWithoutStats).to.deep.equal([]);
    expect(inv.rpc.requests).to.be.above(20);
    for (const id of ["f1-h2-c1", "f4-h5-c2"]) {
      const stats = JSON.parse(fs.readFileSync(path.join(dir, "run", "agents", `${id}.transport.json`), "utf8"));
      expect(stats.circuits, id).to.be.at.least(2);
    }
    const accepted = ledger.events.filter((e) => (e.event as { name: string }).name === "OfferAccepted");
    expect(accepted.length).to.equal(summary.offers.cleared);
  });

  it("conserves energy and money, with everything handed back", () => {
    expect(summary.conservation.energyConserved).to.equal(true);
    expect(summary.conservation.moneyConserved).to.equal(true);
    expect(summary.conservation.assetsStillHeld).to.equal(0);
    expect(summary.allDrained).to.equal(true);
  });

  it("leaves none of the households' addresses in observer.jsonl, and no stream carries two pseudonyms", () => {
    const records = readObserverLog(fs.readFileSync(path.join(dir, "run", "observer.jsonl"), "utf8"));
    const sources = new Set(records.map((r) => r.sourceAddress));
    // The onion-service host and the DSO connect from 127.0.0.1; a household would be 127.0.0.2 on.
    expect([...sources]).to.deep.equal(["127.0.0.1"]);
    for (let i = 0; i < 250; i++) expect(sources.has(loopbackAddressFor(i))).to.equal(false);
    const dso = ledger.header.dso.toLowerCase();
    const fromHouseholds = records.filter(
      (r): r is ObservedTransaction => r.kind === "transaction" && r.txFrom.toLowerCase() !== dso,
    );
    // Every household transaction on chain reached the node through the observer, from Tor.
    const householdTxs = ledger.transactions.filter((x) => x.from.toLowerCase() !== dso);
    expect(householdTxs.length).to.be.above(4);
    expect(new Set(fromHouseholds.map((r) => r.txHash.toLowerCase()))).to.deep.equal(
      new Set(householdTxs.map((x) => x.hash.toLowerCase())),
    );
    const sendersByStream = new Map<number, Set<string>>();
    for (const r of fromHouseholds) {
      sendersByStream.set(r.sourcePort, (sendersByStream.get(r.sourcePort) ?? new Set()).add(r.txFrom));
    }
    for (const [port, senders] of sendersByStream) expect(senders.size, `stream from port ${port}`).to.equal(1);
  });

  it("stops every process and every tor it started, by PID", () => {
    expect(config.processes.length).to.equal(1 + 1 + 2);
    expect(config.transport.torPids.length).to.equal(8);
    for (const p of config.processes) expect(alive(p.pid), `${p.name} ${p.pid}`).to.equal(false);
    for (const pid of config.transport.torPids) expect(alive(pid), `tor ${pid}`).to.equal(false);
  });
});

describe("live runner # Tor options", () => {
  it("names the missing tor binary before starting anything", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-live-notor-"));
    try {
      await runLive({
        scenario: "case-study-9",
        outDir: path.join(dir, "run"),
        seed: 1,
        intervals: 1,
        tor: { torPath: "/nonexistent/tor" },
      });
      expect.fail("ran without tor");
    } catch (e) {
      expect(isError(e, "TOR_NOT_INSTALLED")).to.equal(true, String(e));
      expect((e as Error).message).to.contain("/nonexistent/tor");
      expect(fs.existsSync(path.join(dir, "run", "config.json"))).to.equal(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects the onion route through an existing client without its control port, naming the option", async () => {
    try {
      await runLive({
        scenario: "case-study-9",
        outDir: path.join(os.tmpdir(), "petra-never-written"),
        seed: 1,
        tor: { existing: { socks: "127.0.0.1:9050" } },
      });
      expect.fail("accepted");
    } catch (e) {
      expect(isError(e, "INVALID_ARGUMENT")).to.equal(true, String(e));
      expect((e as Error).message).to.match(/^tor\.existing\.control:/);
    }
  });

  it("turns the CLI flags into Tor options, and refuses Tor flags without --tor or --tor-socks", () => {
    expect(torOptionsFromFlags({})).to.equal(undefined);
    expect(torOptionsFromFlags({ tor: true })).to.deep.equal({});
    expect(
      torOptionsFromFlags({ tor: true, torRoute: "exit", torIsolation: "household", torClients: 2 }),
    ).to.deep.equal({ route: "exit", isolation: "household", clients: 2 });
    expect(
      torOptionsFromFlags({ torSocks: "127.0.0.1:9050", torControl: "127.0.0.1:9051", torCookie: "/c" }),
    ).to.deep.equal({ existing: { socks: "127.0.0.1:9050", control: "127.0.0.1:9051", cookiePath: "/c" } });
    expect(() => torOptionsFromFlags({ torRoute: "exit" })).to.throw(/--tor-route needs --tor or --tor-socks/);
    expect(() => torOptionsFromFlags({ tor: true, torControl: "127.0.0.1:9051" })).to.throw(/--tor-socks/);
    expect(() => torOptionsFromFlags({ torSocks: "127.0.0.1:9050", torClients: 2 })).to.throw(/--tor-clients/);
  });

  it("documents the Tor flags in petra live --help", () => {
    const help = liveCommand().helpInformation();
    for (const flag of [
      "--tor ",
      "--tor-socks <host:port>",
      "--tor-control <host:port>",
      "--tor-password",
      "--tor-cookie",
      "--tor-route <route>",
      "--tor-isolation",
      "--tor-clients",
      "--hop-delay-ms",
    ]) {
      expect(help).to.contain(flag);
    }
  });
});
