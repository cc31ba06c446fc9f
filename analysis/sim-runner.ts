import * as fs from "node:fs";
import * as path from "node:path";
import * as v8 from "node:v8";
import { Wallet } from "ethers";
import { AccountBook } from "../agents/account-book";
import { SerialNonceSigner } from "../agents/chain-live";
import { devKey } from "../agents/dev-accounts";
import { Dso } from "../agents/dso";
import { DsoClient } from "../agents/dso-client";
import { publicKeyHex, type SigningKey, signingKeyFromHex } from "../agents/envelope";
import { householdParts } from "../agents/household-agent";
import { HouseholdRegistry } from "../agents/household-registry";
import { SharedMarketBook } from "../agents/market-book";
import { decodeMarketLog } from "../agents/market-log";
import { cpuFromProcStat } from "../agents/process-group";
import { Prosumer, type ProsumerRecord } from "../agents/prosumer";
import { withdrawerFor } from "../agents/prosumer-process";
import { PseudonymWallet } from "../agents/pseudonym-wallet";
import { type SimChainKind, startAnvilSimChain } from "../agents/sim/anvil";
import { SimClock } from "../agents/sim/clock-sim";
import { type Delay, parseDelay } from "../agents/sim/distribution";
import { createSimChainProvider, Eip1193JsonRpcProvider } from "../agents/sim/edr";
import { Link, marketLogsOf, SimChain, SimProvider, type SimRequest } from "../agents/sim/sim-chain";
import { SimLedger } from "../agents/sim/sim-ledger";
import { SimSockets } from "../agents/sim/sim-network";
import { DEFAULT_SIM_CHAIN, type Eip1193, SimNode } from "../agents/sim/sim-node";
import { PaperStrategy } from "../agents/strategy-paper";
import { loopbackAddressFor } from "../agents/transport-direct";
import { txHashOf } from "../agents/tx-encoding";
import { datasetLines } from "../attacks/dataset";
import { readDatasetFromProvider } from "../attacks/dataset-rpc";
import { toMarketEvent } from "../attacks/market-replay";
import { check, PetraError } from "../common/errors";
import { useFastKeccakInEthers } from "../common/fast-crypto";
import { createRng, type Rng } from "../common/rng";
import { EnergyMarket__factory } from "../typechain-types";
import type { HouseholdRecord } from "./clearing-times";
import type { LiveSummary } from "./live-runner";
import { clearingLine, dsoRegistry, scenarioForRun, writeRunResults } from "./run-results";

/** The defaults of a simulated run: the paper's real interval length and latencies measured in live runs. */
export const SIM_DEFAULTS = {
  /** PoW-like blocks; `petra reproduce` uses the mean fitted to the paper instead. */
  blocks: "exp:15000",
  /** Round trip agent <-> node: direct RPC over loopback measured 2.8 ms median (bench/tor.json). */
  rpcLatency: "lognormal:2.8:0.5",
  /** Round trip household <-> DSO over ZeroMQ: ~0.1 ms on loopback (TOOLCHAIN.md) plus envelope work. */
  messageLatency: "lognormal:1:0.5",
} as const;

export interface SimRunOptions {
  /** Scenario name (scenarios/<name>.json) or path. */
  scenario: string;
  /** Run directory; created if missing. */
  outDir: string;
  seed: number;
  /** Trade only the first N intervals of the scenario's window. */
  intervals?: number;
  /** Start the window later than the scenario does, at this time of day ("HH:MM"). Default: the scenario's start. */
  windowStart?: string;
  /** Only the scenario's first N households. */
  households?: number;
  /** Simulated length of an interval, ms. Default: the scenario's intervalMinutes (real time). */
  intervalMs?: number;
  /** Block-time model (a delay spec: exp:MEAN, fixed:MS, samples:FILE[:FIELD]). */
  blocks?: string;
  /** Round-trip latency of each JSON-RPC call (delay spec). */
  rpcLatency?: string;
  /** Round-trip latency of each message to and from the DSO (delay spec). */
  messageLatency?: string;
  /**
   * How consumers pick among usable asks: the paper's "lowest-id" (first come, first served) or
   * "random" (spreads hundreds of consumers over the asks). Default: the scenario's
   * prosumer.offerChoice, else "lowest-id".
   */
  offerChoice?: "lowest-id" | "random";
  /** Backoff exponent after a lost accept race (agents/prosumer.ts). Default: the scenario's prosumer.raceBackoff. */
  raceBackoff?: number;
  /**
   * The chain: "edr", the in-process Hardhat network (default), or "anvil", a child process that
   * prunes old states and receipts, so memory stays flat over a long run of many households.
   */
  chain?: SimChainKind;
  /** Write observer.jsonl (the network observer at the RPC node). Default true. */
  observer?: boolean;
  /**
   * Also read the ledger back from the chain at the end, as `petra live` does, and fail if it
   * differs from the one built while the blocks were sealed (a test of SimLedger). Default false.
   */
  verifyLedger?: boolean;
  /** Called once the chain is up; for a chain process (anvil), with its pid. */
  onChain?: (chain: { kind: SimChainKind; pid?: number }) => void;
  /** Called with the fraction of simulated time done, at most a few times a second. */
  onProgress?: (p: SimProgress) => void;
  log?: (line: string) => void;
}

export interface SimProgress {
  fraction: number;
  simulatedMs: number;
  transactions: number;
  wallMs: number;
}

export interface SimSummary extends LiveSummary {
  mode: "simulated";
  latency: { rpc: string; message: string };
  wall: { totalS: number; setupS: number; tradingS: number; outputS: number };
  throughput: {
    marketTxPerWallS: number;
    events: number;
    rpcCalls: number;
    rpcCallsByMethod: Record<string, { calls: number; wallMs: number }>;
    messages: number;
    /** Wall seconds the chain spent answering calls while trading (wall.tradingS's share). */
    tradingChainS: number;
    /**
     * When the clock entered each simulated interval (the lead interval first): wall seconds since
     * trading began, transactions mined, wall seconds the chain had spent answering calls since
     * trading began (the rest is the agents' own work and the simulation's, less what overlapped),
     * and the JavaScript heap in use. Where a
     * long run's time goes, by time of day, and whether the chain or the agents grow slower.
     */
    wallByInterval: { interval: number; wallS: number; transactions: number; chainS: number; heapMB: number }[];
  };
  /** The anvil process's own CPU time and peak memory (chain "anvil" only; EDR's are this process's). */
  chainProcess?: { pid: number; cpuS: number; peakRssMB: number };
}

/**
 * How often the DSO polls the market's logs for deposits: about once per block. Every poll costs
 * chain calls in simulated mode as in live mode, and crediting a deposit a block later changes nothing.
 */
const dsoLogPollMs = (blockTime: Delay) => Math.max(500, Math.min(15_000, blockTime.meanMs));

/** Ed25519 keys from the run's random stream, so a run's messages are a function of its seed. */
function seededSigningKey(rng: Rng): SigningKey {
  let hex = "";
  for (let i = 0; i < 32; i++) hex += rng.int(0, 255).toString(16).padStart(2, "0");
  return signingKeyFromHex(hex);
}

/**
 * One simulated run: the scenario's DSO and households, the same agent code as live mode, on
 * the in-process chain and a discrete-event clock, in one process. Writes the same run
 * directory as `petra live`. Same seed and options give a byte-identical ledger.
 */
export async function runSim(opts: SimRunOptions): Promise<SimSummary> {
  return (await runSimWithClearing(opts)).summary;
}

/** runSim, also returning every cleared offer's clearing time in seconds (as clearing-times.csv holds them). */
export async function runSimWithClearing(opts: SimRunOptions): Promise<{ summary: SimSummary; clearingS: number[] }> {
  const wallStart = Date.now();
  const kind = opts.chain ?? "edr";
  check(kind === "edr" || kind === "anvil", "chain", `must be "edr" or "anvil", got "${kind}"`);
  if (kind === "edr") {
    const eip = await createSimChainProvider(DEFAULT_SIM_CHAIN);
    opts.onChain?.({ kind: "edr" });
    return simulate(opts, wallStart, eip, "edr");
  }
  check(!opts.verifyLedger, "verifyLedger", "needs the whole chain, which anvil prunes: use the edr chain");
  fs.mkdirSync(path.resolve(opts.outDir), { recursive: true });
  const anvil = await startAnvilSimChain(DEFAULT_SIM_CHAIN, {
    logFile: path.join(path.resolve(opts.outDir), "anvil.log"),
  });
  try {
    opts.onChain?.({ kind: "anvil", pid: anvil.pid });
    return await simulate(opts, wallStart, anvil.eip, "anvil", () => processUsage(anvil.pid), anvil.died);
  } finally {
    await anvil.stop();
  }
}

async function simulate(
  opts: SimRunOptions,
  wallStart: number,
  eip: Eip1193,
  chainKind: SimChainKind,
  chainProcess?: () => SimSummary["chainProcess"],
  chainDied?: Promise<never>,
): Promise<{ summary: SimSummary; clearingS: number[] }> {
  // A chain process that dies ends the run at the next event, with its error, instead of every
  // agent failing in turn until the deadline.
  let chainError: unknown;
  chainDied?.catch((e) => {
    chainError = e;
  });
  // Every agent's hashing goes through ethers; natively it costs a fifth, and digests are digests.
  useFastKeccakInEthers();
  const log = opts.log ?? (() => {});
  const { scenario, intervals } = scenarioForRun(opts.scenario, opts.households, opts.intervals, opts.windowStart);
  const intervalMs = opts.intervalMs ?? scenario.file.intervalMinutes * 60_000;
  check(Number.isFinite(intervalMs) && intervalMs >= 1000, "intervalMs", `must be >= 1000, got ${intervalMs}`);
  const outDir = path.resolve(opts.outDir);
  fs.mkdirSync(path.join(outDir, "dso"), { recursive: true });
  const blockTime: Delay = parseDelay(opts.blocks ?? SIM_DEFAULTS.blocks, "blocks");
  const rpcLatency = parseDelay(opts.rpcLatency ?? SIM_DEFAULTS.rpcLatency, "rpcLatency");
  const messageLatency = parseDelay(opts.messageLatency ?? SIM_DEFAULTS.messageLatency, "messageLatency");
  const lead = scenario.file.prosumer.leadIntervals;
  const rng = createRng(opts.seed);
  const offerChoice = opts.offerChoice ?? scenario.file.prosumer.offerChoice;
  const raceBackoff = opts.raceBackoff ?? scenario.file.prosumer.raceBackoff;

  const config: Record<string, unknown> = {
    mode: "simulated",
    seed: opts.seed,
    scenario: scenario.file,
    scenarioSource: scenario.source,
    overrides: {
      intervals,
      intervalMs,
      households: scenario.households.length,
      offerChoice,
      raceBackoff,
      windowStart: opts.windowStart,
    },
    blocks: blockTime.spec,
    latency: { rpc: rpcLatency.spec, message: messageLatency.spec },
    chain: { kind: chainKind, ...DEFAULT_SIM_CHAIN, accountBalanceWei: DEFAULT_SIM_CHAIN.accountBalanceWei.toString() },
  };
  const writeConfig = () => fs.writeFileSync(path.join(outDir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  writeConfig();

  // ------------------------------------------------------------------ world
  const clock = new SimClock();
  const node = await SimNode.start(eip, clock, DEFAULT_SIM_CHAIN.genesisDate);
  const ledgerStream = new SimLedger(node);
  const chainId = DEFAULT_SIM_CHAIN.chainId;
  const observerPath = path.join(outDir, "observer.jsonl");
  fs.rmSync(observerPath, { force: true });
  const sourceOf = new Map<string, string>([["dso", "127.0.0.1"]]);
  scenario.households.forEach((h, i) => {
    sourceOf.set(h.id, loopbackAddressFor(i));
  });
  const observed: { sourceAddress: string; atMs: number; txHash: string }[] = [];
  const observe =
    opts.observer === false
      ? undefined
      : (r: SimRequest) => {
          // What a node operator logs (agents/network-observer.ts): who submitted which transaction.
          if (r.method !== "eth_sendRawTransaction") return;
          observed.push({
            sourceAddress: sourceOf.get(r.identity) ?? "unknown",
            atMs: r.atMs,
            // This list holds one per transaction until the run ends: a flat string (txHashOf).
            txHash: txHashOf(r.params[0] as string),
          });
        };
  const linkFor = (identity: string) => new Link(rpcLatency, rng.fork(`rpc/${identity}`));
  const providerFor = (identity: string, link: Link) =>
    new SimProvider({ node, clock, link, chainId, identity, observe });
  const sockets = new SimSockets({
    clock,
    roundTrip: messageLatency,
    rngFor: (identity) => rng.fork(`message/${identity}`),
  });

  const dsoKey = devKey(0);
  const dsoLink = linkFor("dso");
  const dsoProvider = providerFor("dso", dsoLink);
  const mineSoon = () => clock.schedule(clock.now() + 1, () => void node.mine());
  const { marketAddress, fromBlock } = await clock.runUntil(
    (async () => {
      const signer = new SerialNonceSigner(dsoKey, dsoProvider);
      const tx = await signer.sendTransaction(await new EnergyMarket__factory().getDeployTransaction());
      mineSoon();
      await node.whenMined(tx.hash);
      const r = await dsoProvider.getTransactionReceipt(tx.hash);
      if (!r?.contractAddress || r.status !== 1) throw new PetraError("TX_FAILED", "market deployment failed");
      return { marketAddress: r.contractAddress, fromBlock: r.blockNumber };
    })(),
    "deploying the market",
  );
  ledgerStream.setMarket(marketAddress);
  // The market as every household reads it, fed each block as the node seals it: before any
  // household's watch delivers the block, a link delay later. From the deployment on, so the
  // book holds every market log a household's history holds.
  const marketBook = new SharedMarketBook();
  const market = marketAddress.toLowerCase();
  const bookFeed = node.onBlock((b) => {
    try {
      marketBook.apply(marketLogsOf(b, market), (l) => toMarketEvent(decodeMarketLog(l)));
    } catch (e) {
      // Logs the book cannot apply would leave every household's market wrong: the run ends.
      chainError ??= e;
    }
  });
  log(`EnergyMarket at ${marketAddress} (block ${fromBlock}), simulated chain ${chainId}`);
  Object.assign(config, { chainId, marketAddress, deployBlock: fromBlock });

  const households = scenario.households;
  const keyRng = rng.fork("signing-keys");
  const dsoSigning = seededSigningKey(keyRng);
  const keys = new Map(households.map((h) => [h.id, seededSigningKey(keyRng)]));
  const registry = dsoRegistry(scenario, (id) => publicKeyHex(keys.get(id) as SigningKey), intervals);
  const dbPath = path.join(outDir, "dso", "dso.sqlite");
  for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(dbPath + suffix, { force: true });
  const gasMode = scenario.file.prosumer.gasFunding;
  const book = new AccountBook({ path: dbPath, marketAddress, chainId, synchronous: "NORMAL" });
  const dso = new Dso({
    endpoint: "sim://dso",
    sockets,
    registry: new HouseholdRegistry(registry),
    book,
    provider: dsoProvider,
    wallet: new Wallet(dsoKey, dsoProvider),
    marketAddress,
    chainId,
    signingKey: dsoSigning,
    clock,
    gasFundingWei: gasMode === "dso" ? BigInt(scenario.file.prosumer.gasPerAddressWei) : 0n,
    fromBlock,
    // Polls cost chain calls in simulated time too: a block time's fraction is enough.
    logPollIntervalMs: dsoLogPollMs(blockTime),
    receiptPollIntervalMs: Math.max(100, Math.min(1000, blockTime.meanMs / 8)),
    onError: (e) => log(`DSO: ${String(e)}`),
  });
  await clock.runUntil(dso.start(), "starting the DSO");

  if (gasMode === "household-main") {
    // The households' own ether, from before the run: a dev account plays the exchange they bought it on.
    await clock.runUntil(
      (async () => {
        const bank = new SerialNonceSigner(devKey(1), dsoProvider);
        const sent = [];
        for (const h of households) {
          const main = new PseudonymWallet({
            runSeed: opts.seed,
            householdId: h.id,
            policy: { kind: "single" },
            rng,
          }).main();
          sent.push(await bank.sendTransaction({ to: main.address, value: 10n ** 19n }));
        }
        mineSoon();
        for (const tx of sent) await node.whenMined(tx.hash);
      })(),
      "funding the households' main accounts",
    );
  }

  // ------------------------------------------------------------------ households
  const recordsPath = path.join(outDir, "records.jsonl");
  const recordsFd = fs.openSync(recordsPath, "w");
  const price = scenario.file.market.basePriceMicroPerWInterval;
  const startAtMs = clock.now() + 1000;
  const prosumers = households.map((h) => {
    const link = linkFor(h.id);
    const provider = providerFor(h.id, link);
    const chain = new SimChain({ node, clock, provider, link, marketAddress });
    const trueNetW = new Map<number, number>();
    for (const [k, w] of Object.entries(h.trueNetW))
      if (Number(k) >= scenario.firstInterval && Number(k) < scenario.firstInterval + intervals)
        trueNetW.set(Number(k), w);
    const {
      rng: hrng,
      wallet,
      forecast,
      gas,
    } = householdParts({
      runSeed: opts.seed,
      householdId: h.id,
      rotation: scenario.file.prosumer.rotation,
      trueNetW,
      forecastErrorRelativeSd: scenario.file.prosumer.forecastErrorRelativeSd,
      pvCapacityW: h.pvCapacityW,
      connectionLimitW: h.connectionLimitW,
      gasFunding: gasMode,
      gasPerAddressWei: scenario.file.prosumer.gasPerAddressWei,
      chain,
    });
    const client = new DsoClient({
      endpoint: "sim://dso",
      sockets,
      householdId: h.id,
      key: keys.get(h.id) as SigningKey,
      clock,
      dsoPublicKeyHex: publicKeyHex(dsoSigning),
      // The DSO answers once its mint is mined: a few block times, with PoW-like blocks their tail.
      timeoutMs: Math.max(15_000, 8 * blockTime.meanMs),
      attempts: 4,
    });
    const prosumer = new Prosumer({
      householdId: h.id,
      clock,
      chain,
      dso: withdrawerFor(client),
      wallet,
      forecast,
      strategy: new PaperStrategy({
        basePriceMicroPerWInterval: BigInt(price),
        offerChoice,
        rng: hrng.fork("strategy"),
      }),
      gas,
      schedule: {
        firstInterval: scenario.firstInterval,
        intervalCount: intervals,
        intervalMs,
        leadIntervals: lead,
        startAtMs,
      },
      basePriceMicroPerWInterval: BigInt(price),
      fromBlock,
      marketBook,
      raceBackoff: { maxExponent: raceBackoff, rng: hrng.fork("race-backoff") },
      record: (r: ProsumerRecord) => fs.writeSync(recordsFd, `${JSON.stringify({ ...r, household: h.id })}\n`),
    });
    return { id: h.id, prosumer, client };
  });
  const blocks = node.produceBlocks(blockTime, rng.fork("blocks"), (e) => log(String(e)));
  const setupDoneWall = Date.now();
  const runMs = (intervals + lead) * intervalMs;
  const endMs = startAtMs + runMs + 4 * intervalMs;
  log(
    `simulating ${households.length} households x ${intervals} intervals of ${intervalMs / 1000} s (lead ${lead}), blocks ${blockTime.spec}, rpc ${rpcLatency.spec}`,
  );
  let lastProgress = 0;
  const wallByInterval: SimSummary["throughput"]["wallByInterval"] = [];
  const chainMsAtStart = node.chainWallMs;
  const chainSinceStartS = () => Number(((node.chainWallMs - chainMsAtStart) / 1000).toFixed(3));
  let intervalNow = Number.NEGATIVE_INFINITY;
  const progress = () => {
    const wall = Date.now();
    const k = Math.floor((clock.now() - startAtMs) / intervalMs);
    if (k > intervalNow && k >= 0) {
      intervalNow = k;
      wallByInterval.push({
        interval: scenario.firstInterval - lead + k,
        wallS: (wall - setupDoneWall) / 1000,
        transactions: node.stats.transactions,
        chainS: chainSinceStartS(),
        heapMB: Math.round(v8.getHeapStatistics().used_heap_size / 2 ** 20),
      });
    }
    if (!opts.onProgress || wall - lastProgress < 250) return;
    lastProgress = wall;
    opts.onProgress({
      fraction: Math.min(1, (clock.now() - startAtMs) / (endMs - startAtMs)),
      simulatedMs: clock.now(),
      transactions: node.stats.transactions,
      wallMs: wall - wallStart,
    });
  };
  const runs = Promise.all(prosumers.map((p) => p.prosumer.run()));
  let done = false;
  runs.finally(() => {
    done = true;
  });
  await clock.run({ stopWhen: () => done || chainError !== undefined, untilMs: endMs, onEvent: progress });
  if (chainError !== undefined) throw chainError;
  const drained = done ? (await runs).map((r) => r.drained) : prosumers.map(() => false);
  if (!done) {
    log(`households still trading at the deadline (${Math.round(endMs / 1000)} s simulated): stopped`);
    for (const p of prosumers) p.prosumer.stop();
  }
  // One more block, and time for the DSO to credit the last deposits it reads from the logs.
  blocks.stop();
  await clock.runUntil(node.mine(), "sealing the last block");
  await clock.runUntil(clock.sleep(3 * dsoLogPollMs(blockTime)), "the DSO's last log poll");
  for (const p of prosumers) p.client.close();
  await clock.runUntil(dso.stop(), "stopping the DSO");
  book.close();
  fs.closeSync(recordsFd);
  const tradingDoneWall = Date.now();
  const tradingChainS = chainSinceStartS();
  opts.onProgress?.({
    fraction: 1,
    simulatedMs: clock.now(),
    transactions: node.stats.transactions,
    wallMs: tradingDoneWall - wallStart,
  });

  // ------------------------------------------------------------------ results
  ledgerStream.stop();
  bookFeed.cancel();
  const reader = new Eip1193JsonRpcProvider(eip, chainId);
  const ledger = ledgerStream.dataset({
    chainId,
    fromBlock,
    toBlock: node.latestBlock,
    market: marketAddress,
    dso: await EnergyMarket__factory.connect(marketAddress, reader).dso(),
  });
  if (opts.verifyLedger) {
    const read = datasetLines(await readDatasetFromProvider(reader, { market: marketAddress, fromBlock }));
    const built = datasetLines(ledger);
    const n = Math.max(read.length, built.length);
    let at = 0;
    while (at < n && read[at] === built[at]) at++;
    if (at < n)
      throw new PetraError(
        "LEDGER_UNREADABLE",
        `the ledger built from the sealed blocks differs from the chain's at line ${at + 1}: chain ${read[at] ?? "(end)"}, built ${built[at] ?? "(end)"}`,
      );
  }
  if (observe) {
    const fromOf = new Map(ledger.transactions.map((t) => [t.hash.toLowerCase(), t.from]));
    fs.writeFileSync(
      observerPath,
      observed
        .map(
          (o) =>
            `${JSON.stringify({ kind: "transaction", ...o, txFrom: fromOf.get(o.txHash.toLowerCase()) ?? null })}\n`,
        )
        .join(""),
    );
  }
  const records: HouseholdRecord[] = fs
    .readFileSync(recordsPath, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as HouseholdRecord);
  const { fields, rows } = writeRunResults({
    outDir,
    scenario,
    seed: opts.seed,
    intervals,
    fromBlock,
    ledger,
    records,
    dsoDbPath: dbPath,
  });
  const txs = ledger.transactions;
  const marketTxs = txs.filter((t) => (t.to ?? "").toLowerCase() === marketAddress.toLowerCase()).length;
  const end = Date.now();
  const summary: SimSummary = {
    mode: "simulated",
    ...fields,
    node: chainKind === "edr" ? "in-process hardhat (EDR), simulated clock" : "anvil (pruned history), simulated clock",
    blocks: blockTime.spec,
    latency: { rpc: rpcLatency.spec, message: messageLatency.spec },
    intervalMs,
    allDrained: drained.every(Boolean),
    wall: {
      totalS: (end - wallStart) / 1000,
      setupS: (setupDoneWall - wallStart) / 1000,
      tradingS: (tradingDoneWall - setupDoneWall) / 1000,
      outputS: (end - tradingDoneWall) / 1000,
    },
    throughput: {
      marketTxPerWallS: marketTxs / Math.max(0.001, (tradingDoneWall - setupDoneWall) / 1000),
      events: clock.eventsRun,
      rpcCalls: node.stats.calls,
      rpcCallsByMethod: node.stats.callsByMethod,
      messages: sockets.messagesDelivered,
      tradingChainS,
      wallByInterval,
    },
  };
  const usage = chainProcess?.();
  if (usage) summary.chainProcess = usage;
  // Wall times vary from machine to machine; they go to summary.json, never into the ledger.
  fs.writeFileSync(path.join(outDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  log(`${clearingLine(fields)}; ${txs.length} transactions in ${summary.wall.totalS.toFixed(1)} s wall`);
  return { summary, clearingS: rows.map((r) => r.clearingS) };
}

/** CPU seconds (user + system) and peak resident memory of a running process, from /proc (Linux); undefined elsewhere. */
function processUsage(pid: number): SimSummary["chainProcess"] {
  try {
    const { cpuS } = cpuFromProcStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return { pid, cpuS, peakRssMB: hwm ? Math.round(Number(hwm[1]) / 1024) : 0 };
  } catch {
    return undefined;
  }
}
