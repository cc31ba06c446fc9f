import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { type ObservedTransaction, type ObserverLogRecord, readObserverLog } from "../../agents/network-observer";
import { parseTorFault } from "../../agents/tor/live-tor";
import { torAvailable } from "../../agents/tor/tor-network";
import { loopbackAddressFor } from "../../agents/transport-direct";
import { readDeskView } from "../../analysis/attack-inputs";
import { liveCommand, torOptionsFromFlags } from "../../analysis/command-live";
import { type LiveSummary, readSummary, runLive } from "../../analysis/live-runner";
import { type Dataset, readDataset } from "../../attacks/dataset";
import { matchDeskView } from "../../attacks/heuristic-desk-view";
import { isError } from "../../common/errors";

const ROOT = path.join(__dirname, "..", "..");

/**
 * case-study-9 cut to one producer (column "1/2", 79.7 kW of PV) and one consumer (column "4/5"):
 * the smallest market in which offers clear. With `--households 2` the scenario's first two
 * households are both consumers, so nothing would trade. The data are the case study's own.
 */
function writePairScenario(dir: string, base = "case-study-9"): string {
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
  const scenario = JSON.parse(fs.readFileSync(path.join(ROOT, `scenarios/${base}.json`), "utf8"));
  const file = path.join(dir, `${base}-pair.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ ...scenario, name: `${base}-pair`, profile: { ...scenario.profile, file: csv } }),
  );
  return file;
}

/**
 * A suite's run directory, made on first use: removed after the suite when its set-up finished and
 * no test failed, kept and named otherwise, since the households' logs in it say why a run failed.
 */
function runDirectory(prefix: string): { path(): string; setUpDone(): void } {
  let dir: string | undefined;
  let setUp = false;
  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === "failed") failed = true;
  });
  after(() => {
    if (!dir) return;
    if (setUp && !failed) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(`      run directory kept for the diagnosis: ${dir}`);
  });
  return {
    path: () => {
      dir ??= fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      return dir;
    },
    setUpDone: () => {
      setUp = true;
    },
  };
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
  // A run of about a minute; the rest is room for a slow Tor bootstrap (DEFAULT_BOOTSTRAP_TIMEOUT_MS).
  this.timeout(300_000);
  const run = runDirectory("petra-live-tor-");
  let dir: string;
  let summary: LiveSummary;
  let ledger: Dataset;
  let config: { processes: { name: string; pid: number }[]; transport: { kind: string; torPids: number[] } };

  before(async function () {
    if (!torAvailable()) this.skip();
    dir = run.path();
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
    run.setUpDone();
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

describe("live runner # zk over Tor: the relayer and the allowance desk behind onion services", function () {
  // Two runs of 2 intervals: the proofs (2 per withdrawal, 4-9 s on 2 busy cores) need 15 s intervals.
  this.timeout(600_000);
  const run = runDirectory("petra-live-zk-tor-");
  let dir: string;
  const runs: Record<"direct" | "tor", { summary: LiveSummary; records: ObserverLogRecord[]; truth: Truth }> =
    {} as never;

  type Truth = { households: { id: string; addresses: string[] }[] };
  const householdOf = (truth: Truth, address: string) =>
    truth.households.find((h) => h.addresses.some((a) => a.toLowerCase() === address.toLowerCase()))?.id;

  before(async function () {
    if (!torAvailable()) this.skip();
    dir = run.path();
    const scenario = writePairScenario(dir, "case-study-9-zk");
    for (const mode of ["direct", "tor"] as const) {
      const outDir = path.join(dir, mode);
      // The Tor run goes through the command line, with a fault: the desk's onion service restarts
      // once trading has begun (the households got their allowances and notes before).
      const flags = mode === "tor" ? ["--tor", "--tor-fault", "restart-onion:desk@5s"] : [];
      await liveCommand()
        .exitOverride()
        .parseAsync(
          [
            ...["--scenario", scenario, "--out", outDir, "--seed", "5", "--intervals", "2"],
            ...["--interval-ms", "15000", "--blocks", "automine", ...flags],
          ],
          { from: "user" },
        );
      runs[mode] = {
        summary: readSummary(outDir),
        records: readObserverLog(fs.readFileSync(path.join(outDir, "observer.jsonl"), "utf8")),
        truth: JSON.parse(fs.readFileSync(path.join(outDir, "ground-truth.json"), "utf8")),
      };
    }
    run.setUpDone();
  });

  it("completes over Tor with every withdrawal through the relayer and the desk, and offers clear", () => {
    const { summary } = runs.tor;
    const t = summary.transport;
    if (t?.kind !== "tor") throw new Error("not a Tor run");
    expect(t.onionServices?.relayer).to.match(/^[a-z2-7]{56}\.onion$/);
    expect(t.onionServices?.desk).to.match(/^[a-z2-7]{56}\.onion$/);
    expect(summary.withdrawals.accepted).to.equal(4);
    expect(summary.withdrawals.refused).to.equal(0);
    expect(summary.offers.cleared).to.be.at.least(1);
    expect(summary.conservation.energyConserved).to.equal(true);
    expect(summary.conservation.moneyConserved).to.equal(true);
    expect(summary.allDrained).to.equal(true);
    expect(t.inventory.transactions.lost).to.deep.equal([]);
    // The private withdrawer, not the DSO, answered the withdrawals: no DSO re-sends to count.
    expect(t.inventory.zmq).to.include({ withdrawalsVia: "zk", withdrawals: 4, retried: 0, unanswered: 0 });
    expect(t.faults.map((f) => [f.fault, f.ok, f.error])).to.deep.equal([
      [{ kind: "restart-onion", service: "desk", atMs: 5000 }, true, undefined],
    ]);
    expect(t.faults[0]?.detail.republishedMs).to.be.above(0);
    // The household is given the plain endpoints; its transport sends them to the onion services.
    const h = JSON.parse(fs.readFileSync(path.join(dir, "tor", "agents", "f1-h2-c1.config.json"), "utf8"));
    expect(h.transport.onionRoutes[h.zk.relayerUrl]).to.equal(`http://${t.onionServices?.relayer}:80`);
    expect(h.transport.onionRoutes[h.zk.deskEndpoint]).to.match(new RegExp(`^tcp://${t.onionServices?.desk}:\\d+$`));
  });

  it("shows the households' loopback sources to the node and the relayer in direct mode, none over Tor", () => {
    const households = new Set(Array.from({ length: 250 }, (_, i) => loopbackAddressFor(i)));
    for (const mode of ["direct", "tor"] as const) {
      const { records, summary } = runs[mode];
      for (const service of ["rpc", "relayer"]) {
        const sources = new Set(records.filter((r) => r.observer === service).map((r) => r.sourceAddress));
        const seen = [...sources].filter((a) => households.has(a)).sort();
        expect(seen, `${mode} ${service}`).to.deep.equal(mode === "direct" ? ["127.0.0.2", "127.0.0.3"] : []);
      }
      expect(summary.transport?.relayerObservedSourceAddresses, mode).to.deep.equal(
        mode === "direct" ? ["127.0.0.2", "127.0.0.3"] : ["127.0.0.1"],
      );
    }
  });

  it("logs each relayed withdrawal with the pseudonym it paid: from its household's address in direct mode", () => {
    for (const mode of ["direct", "tor"] as const) {
      const { records, truth } = runs[mode];
      const relayed = records.filter(
        (r): r is ObservedTransaction => r.observer === "relayer" && r.kind === "transaction",
      );
      // 4 withdrawals, each a mixer withdrawal, an allowance withdrawal and a gas drop.
      expect(new Set(relayed.map((r) => r.txFrom)).size, mode).to.equal(4);
      expect(relayed.length, mode).to.equal(12);
      for (const r of relayed) {
        const owner = householdOf(truth, r.txFrom);
        expect(owner, r.txFrom).to.not.equal(undefined);
        if (mode === "direct") {
          const index = truth.households.findIndex((h) => h.id === owner);
          expect(r.sourceAddress).to.equal(loopbackAddressFor(index));
        } else {
          expect(r.sourceAddress).to.equal("127.0.0.1");
        }
      }
      if (mode === "tor") {
        // A circuit (and so a stream) per pseudonym: no relayer stream carries two.
        const byStream = new Map<number, Set<string>>();
        for (const r of relayed) byStream.set(r.sourcePort, (byStream.get(r.sourcePort) ?? new Set()).add(r.txFrom));
        for (const [port, who] of byStream) expect(who.size, `stream ${port}`).to.equal(1);
      }
    }
  });

  it("writes the desk's records of money coming back, and every link the desk-view attack is sure of is true", () => {
    for (const mode of ["direct", "tor"] as const) {
      const view = readDeskView(path.join(dir, mode, "desk-view.json"));
      const total = (rows: { denomination: string; count: number }[]) =>
        rows.reduce((sum, r) => sum + BigInt(r.denomination) * BigInt(r.count), 0n);
      // Every household redeems all its notes at the end of the run: what came back went out again.
      expect(view.depositBacks.length, mode).to.be.above(0);
      expect(total(view.redemptions), mode).to.equal(total(view.depositBacks));
      const { truth } = runs[mode];
      const match = matchDeskView(view);
      expect(match.solutions, mode).to.be.above(0);
      for (const [pseudonym, { household }] of match.assigned) {
        // The true assignment is always consistent, so one the attack is sure of is the truth.
        if (match.solutions === 1 && match.exhaustive) expect(householdOf(truth, pseudonym), mode).to.equal(household);
      }
      for (const l of match.links.filter((x) => x.score === 1)) {
        expect(householdOf(truth, l.a), `${mode} ${l.reason}`).to.equal(householdOf(truth, l.b));
      }
    }
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

  it("parses --tor-fault, naming the part that is wrong", () => {
    expect(parseTorFault("kill-relay@90s")).to.deep.equal({ kind: "kill-relay", atMs: 90_000 });
    expect(parseTorFault("kill-relay@1.5m,hop=exit,directory=keeps")).to.deep.equal({
      kind: "kill-relay",
      atMs: 90_000,
      hop: "exit",
      directory: "keeps",
    });
    expect(parseTorFault("restart-onion:rpc@120s")).to.deep.equal({
      kind: "restart-onion",
      service: "rpc",
      atMs: 120_000,
    });
    expect(parseTorFault("restart-onion:relayer@2500ms")).to.deep.equal({
      kind: "restart-onion",
      service: "relayer",
      atMs: 2500,
    });
    const bad: [string, RegExp][] = [
      ["kill-relay", /"kill-relay": kill-relay: needs @TIME/],
      ["kill-relay@90", /: @90: TIME must be a number with a unit/],
      ["kill-relay@-5s", /: @-5s: TIME/],
      ["kill-relay@9s,hop=guard", /: hop=guard: hop must be "middle" or "exit"/],
      ["kill-relay@9s,directory=forgets", /: directory=forgets: directory must be/],
      ["kill-relay@9s,speed=3", /: speed=3: unknown option/],
      ["kill-relay@9s,exit", /: exit: options are KEY=VALUE/],
      ["kill-relay:rpc@9s", /: kill-relay:rpc: kill-relay takes no :SERVICE/],
      ["restart-onion@9s", /: restart-onion: needs one service/],
      ["restart-onion:web@9s", /: web: unknown onion service, must be rpc, dso, relayer, desk/],
      ["restart-onion:rpc@9s,hop=exit", /: hop=exit: restart-onion takes no options/],
      ["reboot@9s", /: reboot: unknown fault/],
    ];
    for (const [text, message] of bad) {
      try {
        parseTorFault(text);
        expect.fail(`accepted "${text}"`);
      } catch (e) {
        expect(isError(e, "INVALID_ARGUMENT"), text).to.equal(true);
        expect((e as Error).message, text).to.match(/^--tor-fault "/);
        expect((e as Error).message, text).to.match(message);
      }
    }
  });

  it("takes --tor-fault on the command line, repeatable, only with the private network", async () => {
    const faults = [parseTorFault("kill-relay@90s,hop=exit"), parseTorFault("restart-onion:desk@2m")];
    expect(torOptionsFromFlags({ tor: true, torFault: faults })).to.deep.equal({ faults });
    expect(torOptionsFromFlags({ tor: true, torFault: [] })).to.deep.equal({});
    expect(torOptionsFromFlags({ tor: true, torExits: "own" })).to.deep.equal({ exitPlacement: "own" });
    expect(() => torOptionsFromFlags({ torSocks: "127.0.0.1:9050", torExits: "own" })).to.throw(/--tor-exits applies/);
    expect(() => torOptionsFromFlags({ torFault: faults })).to.throw(/--tor-fault needs --tor or --tor-socks/);
    expect(() => torOptionsFromFlags({ torSocks: "127.0.0.1:9050", torFault: faults })).to.throw(
      /--tor-fault needs the private network \(--tor\)/,
    );
    // Through commander: every value parsed, a bad one rejected before anything starts.
    const parsed: unknown[] = [];
    const cmd = liveCommand().exitOverride();
    cmd.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    cmd.action((opts: { torFault?: unknown[] }) => {
      parsed.push(opts.torFault);
    });
    await cmd.parseAsync(["--tor", "--tor-fault", "kill-relay@90s,hop=exit", "--tor-fault", "restart-onion:desk@2m"], {
      from: "user",
    });
    expect(parsed).to.deep.equal([faults]);
    try {
      await liveCommand()
        .exitOverride()
        .configureOutput({ writeErr: () => undefined })
        .parseAsync(["--tor", "--tor-fault", "kill-relay@soon"], { from: "user" });
      expect.fail("accepted a bad --tor-fault");
    } catch (e) {
      expect(String((e as Error).message)).to.contain('--tor-fault "kill-relay@soon": @soon: TIME must be');
    }
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
      "--tor-exits <placement>",
      "--tor-fault <fault>",
      "kill-relay@90s",
      "restart-onion:SERVICE@120s",
      "--hop-delay-ms",
    ]) {
      expect(help).to.contain(flag);
    }
  });
});
