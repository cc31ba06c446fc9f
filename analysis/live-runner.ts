import * as fs from "node:fs";
import * as path from "node:path";
import { JsonRpcProvider, Network } from "ethers";
import { SerialNonceSigner } from "../agents/chain-live";
import { LiveClock } from "../agents/clock-live";
import { DelayProxy } from "../agents/delay-proxy";
import { deployEnergyMarket } from "../agents/deploy-market";
import { devKey } from "../agents/dev-accounts";
import { generateSigningKey, publicKeyHex } from "../agents/envelope";
import { freePorts } from "../agents/free-ports";
import { NetworkObserver } from "../agents/network-observer";
import { type Managed, ProcessGroup, ROOT, waitForOutput } from "../agents/process-group";
import type { ProsumerConfig } from "../agents/prosumer-process";
import { PseudonymWallet } from "../agents/pseudonym-wallet";
import { type NodeKind, rpc, startNode } from "../agents/rpc-node-process";
import {
  LiveTor,
  type LiveTorDescription,
  type LiveTorOptions,
  TOR_DSO_TIMEOUT_MS,
  type TorFaultRecord,
  type TorInventory,
  torInventory,
  validateLiveTorOptions,
} from "../agents/tor/live-tor";
import { assertTorInstalled } from "../agents/tor/tor-network";
import { loopbackAddressFor } from "../agents/transport-direct";
import { readDatasetFromRpc } from "../attacks/dataset-rpc";
import { check, PetraError } from "../common/errors";
import { createRng } from "../common/rng";
import type { HouseholdRecord } from "./clearing-times";
import { type BlockSetting, formatBlockSetting, parseBlockSetting, startBlockProduction } from "./live-blocks";
import { type LiveZk, startLiveZk } from "./live-zk";
import { clearingLine, dsoRegistry, type RunResultFields, scenarioForRun, writeRunResults } from "./run-results";

export interface LiveRunOptions {
  /** Scenario name (scenarios/<name>.json) or path. */
  scenario: string;
  /** Run directory; created if missing. */
  outDir: string;
  seed: number;
  /** Use this JSON-RPC node instead of starting one. Its first two dev accounts must be funded (hardhat/anvil default mnemonic). */
  rpcUrl?: string;
  /** Node to start when rpcUrl is not given. Default "hardhat". */
  node?: NodeKind;
  /** Trade only the first N intervals of the scenario's window. */
  intervals?: number;
  /** Run only the scenario's first N households (in file order): one OS process each, so a small machine may need fewer. */
  households?: number;
  /** Wall length of a trading interval, ms. Default: the scenario's live.intervalMs. */
  intervalMs?: number;
  /** "automine", "fixed:MS" or "exp:MEAN_MS". Default: the scenario's live.blocks. */
  blocks?: string;
  /** Budget for all processes to start, ms. Default 90 000 (each loads TypeScript through ts-node). */
  startupTimeoutMs?: number;
  /**
   * Households' traffic through Tor (agents/tor/live-tor.ts): a private network the run starts, or
   * an existing client (`existing`). Default: direct, each household from its own 127.0.0.x.
   */
  tor?: LiveTorOptions;
  /**
   * One-way delay added on every network link a household's traffic crosses, ms: to the node (the
   * observer holds each chunk) and to the DSO (a delay proxy), and with Tor on every OR link too.
   * Default 0.
   */
  hopDelayMs?: number;
  log?: (line: string) => void;
}

/** How the households' traffic left, as summary.json records it. */
export type LiveTransportSummary = (
  | { kind: "direct"; hopDelayMs: number }
  | (LiveTorDescription & { faults: TorFaultRecord[]; inventory: TorInventory })
) & {
  /** Source addresses the network observer at the node saw (what Tor leaves visible). */
  observedSourceAddresses: string[];
  /** zk runs: source addresses the observer in front of the relayer saw (what its operator sees). */
  relayerObservedSourceAddresses?: string[];
};

export interface LiveSummary extends RunResultFields {
  node: string;
  blocks: string;
  intervalMs: number;
  allDrained: boolean;
  /** Absent in summaries written before Tor mode existed. */
  transport?: LiveTransportSummary;
}

const TS_NODE = ["-r", "ts-node/register/transpile-only"];
const tsEnv = () => ({
  ...process.env,
  TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"),
  TS_NODE_TRANSPILE_ONLY: "true",
});

/**
 * One live run: a node (started or given), the market, the DSO process and one process per
 * household, all on loopback; then the run directory. Everything it started is stopped by PID,
 * also when it fails or is interrupted.
 */
export async function runLive(opts: LiveRunOptions): Promise<LiveSummary> {
  const log = opts.log ?? (() => {});
  const { scenario, intervals } = scenarioForRun(opts.scenario, opts.households, opts.intervals);
  const intervalMs = opts.intervalMs ?? scenario.file.live.intervalMs;
  check(
    Number.isInteger(intervalMs) && intervalMs >= 500,
    "intervalMs",
    `must be an integer >= 500, got ${intervalMs}`,
  );
  const blocks: BlockSetting = parseBlockSetting(opts.blocks ?? scenario.file.live.blocks);
  const hopDelayMs = opts.hopDelayMs ?? 0;
  check(Number.isFinite(hopDelayMs) && hopDelayMs >= 0, "hopDelayMs", `must be >= 0, got ${hopDelayMs}`);
  if (opts.tor) {
    validateLiveTorOptions(opts.tor);
    // Before anything starts: a missing tor is a clear error, not a half-started run.
    if (!opts.tor.existing) assertTorInstalled({ torPath: opts.tor.torPath });
  }
  const outDir = path.resolve(opts.outDir);
  const agentsDir = path.join(outDir, "agents");
  fs.mkdirSync(agentsDir, { recursive: true });
  for (const f of fs.readdirSync(agentsDir)) fs.rmSync(path.join(agentsDir, f), { force: true, recursive: true });

  const clock = new LiveClock();
  const rng = createRng(opts.seed);
  const group = new ProcessGroup();
  const lead = scenario.file.prosumer.leadIntervals;
  const config: Record<string, unknown> = {
    seed: opts.seed,
    scenario: scenario.file,
    scenarioSource: path.relative(ROOT, scenario.source),
    overrides: {
      intervals,
      intervalMs,
      blocks: formatBlockSetting(blocks),
      households: scenario.households.length,
      hopDelayMs,
    },
    transport: opts.tor
      ? {
          kind: "tor",
          ...opts.tor,
          existing: opts.tor.existing ? { ...opts.tor.existing, password: undefined } : undefined,
        }
      : { kind: "direct" },
    rpcUrl: opts.rpcUrl ?? null,
    node: opts.rpcUrl ? "external" : (opts.node ?? "hardhat"),
    startedAt: new Date(clock.now()).toISOString(),
  };
  const writeConfig = () => fs.writeFileSync(path.join(outDir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  writeConfig();

  let blockProduction: { stop(): Promise<void> } | undefined;
  let observer: NetworkObserver | undefined;
  let relayerObserver: NetworkObserver | undefined;
  let deskDelay: DelayProxy | undefined;
  // Tor (or a delay) needs the observer's and the DSO's ports before they exist: the Tor network
  // bootstraps (~15 s) while the node, the market and the DSO start.
  let tor: LiveTor | undefined;
  let torStarting: Promise<LiveTor> | undefined;
  const torAbort = new AbortController();
  let dsoDelay: DelayProxy | undefined;
  try {
    const zkRun = scenario.file.prosumer.withdrawal === "zk";
    // The relayer's observer and the allowance desk (zk runs) get fixed ports too: onion services need them.
    const [observerPort, dsoPublicPort, relayerPublicPort, deskPublicPort] =
      opts.tor || hopDelayMs > 0 ? await freePorts(zkRun ? 4 : 2) : [];
    if (opts.tor) {
      torStarting = LiveTor.start({
        tor: opts.tor,
        // A local node is reached through the observer (below), on the port fixed here.
        rpcUrl: observedNode(opts.rpcUrl) ? `http://127.0.0.1:${observerPort}` : (opts.rpcUrl as string),
        dsoEndpoint: `tcp://127.0.0.1:${dsoPublicPort}`,
        ...(zkRun
          ? { relayerUrl: `http://127.0.0.1:${relayerPublicPort}`, deskEndpoint: `tcp://127.0.0.1:${deskPublicPort}` }
          : {}),
        hopDelayMs,
        signal: torAbort.signal,
        log: (l) => log(`tor: ${l}`),
      });
      torStarting.catch(() => undefined);
    }
    // ---------------------------------------------------------------- chain
    let url = opts.rpcUrl;
    if (!url) {
      const node = await startNode(group, opts.node ?? "hardhat", {
        logFile: path.join(outDir, "node.log"),
        timeoutMs: opts.startupTimeoutMs ?? 90_000,
      });
      url = node.url;
      log(`${node.kind} node on ${url} (pid ${node.managed.pid})`);
    }
    const chainId = Number(await rpc(url, "eth_chainId"));
    const provider = new JsonRpcProvider(url, Network.from(chainId), {
      staticNetwork: true,
      batchMaxCount: 1,
      cacheTimeout: -1,
      pollingInterval: 100,
    });
    // Deploy on automine, whatever the node's setting, so setup does not wait for blocks.
    await rpc(url, "evm_setAutomine", [true]).catch(() => undefined);
    const dsoKey = devKey(0);
    const market = await deployEnergyMarket(new SerialNonceSigner(dsoKey, provider));
    const marketAddress = await market.getAddress();
    const fromBlock = (await market.deploymentTransaction()?.wait())?.blockNumber ?? 0;
    log(`EnergyMarket at ${marketAddress} (block ${fromBlock})`);
    // zk withdrawals (prosumer.withdrawal "zk"): the zk contracts and the relayer (analysis/live-zk.ts).
    const zk: LiveZk | undefined = zkRun
      ? await startLiveZk({
          group,
          dso: new SerialNonceSigner(dsoKey, provider),
          marketAddress,
          rpcUrl: url,
          relayerPrivateKey: devKey(2),
          gasDropWei: scenario.file.prosumer.gasFunding === "dso" ? scenario.file.prosumer.gasPerAddressWei : "0",
          runDir: outDir,
          timeoutMs: opts.startupTimeoutMs ?? 90_000,
          log,
        })
      : undefined;
    if (zk) Object.assign(config, { zk: zk.description });
    // Households reach the relayer through an observer, as they reach the node: it logs the source
    // of each request and the pseudonym it pays (observer.jsonl, `observer: "relayer"`), what the
    // relayer's operator sees. Its port is fixed in advance for Tor's onion service.
    let relayerUrl: string | undefined;
    if (zk) {
      relayerObserver = await NetworkObserver.start({
        name: "relayer",
        protocol: "relayer",
        targetPort: Number(new URL(zk.relayerUrl).port),
        logPath: path.join(outDir, "observer.jsonl"),
        ...(relayerPublicPort !== undefined ? { listenPort: relayerPublicPort } : {}),
        delayMs: hopDelayMs,
      });
      relayerUrl = relayerObserver.url();
      log(`households reach the relayer through an observer on ${relayerUrl}`);
    }
    // The agents reach a local node through a network observer, as the node's operator would watch
    // them: it logs each connection's source address and each submitted transaction
    // (observer.jsonl, read by the network-level attack). A remote node is reached directly.
    let agentsUrl = url;
    const nodeUrl = new URL(url);
    if (observedNode(url)) {
      observer = await NetworkObserver.start({
        targetHost: nodeUrl.hostname,
        targetPort: Number(nodeUrl.port || 80),
        logPath: path.join(outDir, "observer.jsonl"),
        ...(observerPort !== undefined ? { listenPort: observerPort } : {}),
        delayMs: hopDelayMs,
      });
      agentsUrl = observer.url();
    } else {
      log(`no network observer: ${url} is not a local http node`);
    }
    Object.assign(config, { chainId, marketAddress, deployBlock: fromBlock, rpcUrlUsed: url, agentsRpcUrl: agentsUrl });

    // ---------------------------------------------------------------- DSO
    const households = scenario.households;
    const keys = new Map(households.map((h) => [h.id, generateSigningKey()]));
    const price = scenario.file.market.basePriceMicroPerWInterval;
    const registry = dsoRegistry(
      scenario,
      (id) => publicKeyHex(keys.get(id) as ReturnType<typeof generateSigningKey>),
      intervals,
    );
    // zk: the account also pays the change on whole notes and the relayer's fees.
    if (zk) for (const h of registry.households) h.initialBalance += zk.balanceSlack(intervals);
    const dsoSigning = generateSigningKey();
    const dsoDir = path.join(outDir, "dso");
    fs.mkdirSync(dsoDir, { recursive: true });
    fs.rmSync(path.join(dsoDir, "dso.sqlite"), { force: true });
    const gasMode = scenario.file.prosumer.gasFunding;
    const dsoConfigPath = path.join(dsoDir, "dso.json");
    fs.writeFileSync(
      dsoConfigPath,
      JSON.stringify(
        {
          rpcUrl: agentsUrl,
          marketAddress,
          dsoPrivateKey: dsoKey,
          signingKeyHex: Buffer.from(dsoSigning.secretKey).toString("hex"),
          // Tor's onion service (or the delay proxy) forwards to a port fixed in advance.
          endpoint:
            dsoPublicPort !== undefined && hopDelayMs === 0 ? `tcp://127.0.0.1:${dsoPublicPort}` : "tcp://127.0.0.1:*",
          dbPath: "dso.sqlite",
          registry,
          gasFundingWei: gasMode === "dso" ? scenario.file.prosumer.gasPerAddressWei : "0",
          ...(zk
            ? {
                allowanceDesk: {
                  ...zk.deskConfig,
                  // Tor's onion service (or the delay proxy) forwards to a port fixed in advance.
                  endpoint:
                    deskPublicPort !== undefined && hopDelayMs === 0
                      ? `tcp://127.0.0.1:${deskPublicPort}`
                      : zk.deskConfig.endpoint,
                },
              }
            : {}),
          fromBlock,
          logPollIntervalMs: 100,
        },
        null,
        2,
      ),
    );
    const dso = group.spawn(
      "dso",
      process.execPath,
      [...TS_NODE, path.join(ROOT, "agents", "dso-process.ts"), "--config", dsoConfigPath],
      {
        env: tsEnv(),
        logFile: path.join(dsoDir, "dso.log"),
      },
    );
    const ready = await waitForOutput(dso, /\{"event":"ready".*\}/, opts.startupTimeoutMs ?? 90_000);
    let dsoEndpoint = (JSON.parse(ready[0]) as { endpoint: string }).endpoint;
    let deskEndpoint = (JSON.parse(ready[0]) as { deskEndpoint?: string }).deskEndpoint;
    log(`DSO on ${dsoEndpoint} (pid ${dso.pid})`);
    if (hopDelayMs > 0) {
      dsoDelay = await DelayProxy.start({
        listenPort: dsoPublicPort,
        targetPort: Number(/:(\d+)$/.exec(dsoEndpoint)?.[1]),
        delayMs: hopDelayMs,
      });
      dsoEndpoint = `tcp://127.0.0.1:${dsoDelay.port}`;
      log(`households reach the DSO through a ${hopDelayMs} ms delay on ${dsoEndpoint}`);
      if (deskEndpoint) {
        deskDelay = await DelayProxy.start({
          listenPort: deskPublicPort,
          targetPort: Number(/:(\d+)$/.exec(deskEndpoint)?.[1]),
          delayMs: hopDelayMs,
        });
        deskEndpoint = `tcp://127.0.0.1:${deskDelay.port}`;
      }
    }
    if (torStarting) {
      tor = await torStarting;
      config.transport = tor.description;
      writeConfig();
      log(
        `Tor (${tor.description.tor}, route ${tor.description.route}) ready${tor.description.bootstrapS !== undefined ? ` after ${tor.description.bootstrapS.toFixed(1)} s` : ""}`,
      );
    }

    // ---------------------------------------------------------------- households
    if (gasMode === "household-main") {
      // The households' own ether, from before the run: a dev account plays the exchange they bought it on.
      const bank = new SerialNonceSigner(devKey(1), provider);
      for (const h of households) {
        const main = new PseudonymWallet({
          runSeed: opts.seed,
          householdId: h.id,
          policy: { kind: "single" },
          rng,
        }).main();
        await (await bank.sendTransaction({ to: main.address, value: 10n ** 19n })).wait();
      }
    }
    const procs: { id: string; m: Managed; recordFile: string }[] = [];
    households.forEach((h, i) => {
      const recordFile = path.join(agentsDir, `${h.id}.jsonl`);
      const cfg: ProsumerConfig = {
        householdId: h.id,
        runSeed: opts.seed,
        rpcUrl: agentsUrl,
        chainId,
        marketAddress,
        fromBlock,
        dsoEndpoint,
        dsoPublicKeyHex: publicKeyHex(dsoSigning),
        longTermSecretHex: Buffer.from((keys.get(h.id) as ReturnType<typeof generateSigningKey>).secretKey).toString(
          "hex",
        ),
        sourceAddress: loopbackAddressFor(i),
        ...(zk && deskEndpoint
          ? {
              withdrawal: "zk" as const,
              zk: { ...zk.prosumerConfig(h.id, deskEndpoint, agentsDir), relayerUrl: relayerUrl ?? zk.relayerUrl },
            }
          : {}),
        ...(tor
          ? {
              transport: tor.householdTransport(i, path.join(agentsDir, `${h.id}.transport.json`)),
              dsoTimeoutMs: TOR_DSO_TIMEOUT_MS,
            }
          : {}),
        rotation: scenario.file.prosumer.rotation,
        gasFunding: gasMode,
        offerChoice: scenario.file.prosumer.offerChoice,
        raceBackoff: scenario.file.prosumer.raceBackoff,
        gasPerAddressWei: scenario.file.prosumer.gasPerAddressWei,
        trueNetW: Object.fromEntries(
          Object.entries(h.trueNetW).filter(([k]) => Number(k) < scenario.firstInterval + intervals),
        ),
        forecastErrorRelativeSd: scenario.file.prosumer.forecastErrorRelativeSd,
        pvCapacityW: h.pvCapacityW,
        connectionLimitW: h.connectionLimitW,
        basePriceMicroPerWInterval: price,
        schedule: { firstInterval: scenario.firstInterval, intervalCount: intervals, intervalMs, leadIntervals: lead },
        recordFile,
      };
      const cfgPath = path.join(agentsDir, `${h.id}.config.json`);
      fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
      const m = group.spawn(
        `household ${h.id}`,
        process.execPath,
        [...TS_NODE, path.join(ROOT, "agents", "prosumer-process.ts"), cfgPath],
        {
          env: tsEnv(),
          logFile: path.join(agentsDir, `${h.id}.log`),
        },
      );
      procs.push({ id: h.id, m, recordFile });
    });
    await Promise.all(procs.map((p) => waitForOutput(p.m, /"ready":true/, opts.startupTimeoutMs ?? 90_000)));
    log(`${procs.length} households ready`);

    blockProduction = await startBlockProduction({
      url,
      setting: blocks,
      rng: rng.fork("blocks"),
      clock,
      onError: (e) => log(`evm_mine failed: ${String(e)}`),
    });
    const startAtMs = clock.now() + 500;
    Object.assign(config, {
      startAtMs,
      households: households.map((h) => h.id),
      processes: group.list().map((m) => ({ name: m.name, pid: m.pid })),
    });
    writeConfig();
    for (const p of procs) p.m.child.stdin?.write(`${JSON.stringify({ startAtMs })}\n`);
    tor?.scheduleFaults(startAtMs, clock);
    const runMs = (intervals + lead) * intervalMs;
    log(
      `trading ${intervals} intervals of ${intervalMs} ms (lead ${lead}), blocks ${formatBlockSetting(blocks)}; about ${Math.round(runMs / 1000)} s`,
    );

    // Households end by themselves once everything is deposited (or their drain times out).
    const deadline = runMs + 4 * intervalMs + 60_000;
    const ended = await Promise.race([
      Promise.all(procs.map((p) => p.m.exited)).then(() => "done" as const),
      clock.sleep(deadline).then(() => "timeout" as const),
      dso.exited.then(() => "dso-exited" as const),
    ]);
    if (ended === "dso-exited") {
      // Without the DSO nothing can be minted or settled: a run that goes on measures nothing.
      throw new PetraError(
        "PROCESS_FAILED",
        `the DSO process exited mid-run (${dso.child.exitCode ?? dso.child.signalCode}): ${dso.output().slice(-1000)}`,
        {
          name: "dso",
        },
      );
    }
    if (ended === "timeout")
      log(`households still running ${Math.round(deadline / 1000)} s after the start: stopping them`);
    const failed = procs.filter((p) => p.m.child.exitCode !== 0);
    for (const p of failed)
      log(`household ${p.id} exited ${p.m.child.exitCode ?? p.m.child.signalCode}: ${p.m.output().slice(-500)}`);
    const drained = procs.map((p) => /"done":true,"drained":true/.test(p.m.output()));
    const faults = (await tor?.faultRecords()) ?? [];
    await blockProduction.stop();
    blockProduction = undefined;
    // Let the DSO see the last deposits before it stops.
    await clock.sleep(300);

    // ---------------------------------------------------------------- results
    // The ledger in the attack suite's dataset format, read the way any chain observer would.
    const ledger = await readDatasetFromRpc({
      rpcUrl: url,
      market: marketAddress,
      fromBlock,
      // The dataset holds one pool and one vault: the smallest denomination's (every fee note) and consumption's.
      ...(zk ? { mixers: Object.values(zk.pools), vaults: Object.values(zk.vaults) } : {}),
    });
    const records: HouseholdRecord[] = [];
    for (const p of procs) {
      if (!fs.existsSync(p.recordFile)) continue;
      for (const line of fs.readFileSync(p.recordFile, "utf8").split("\n"))
        if (line.trim()) records.push({ ...JSON.parse(line), household: p.id });
    }
    const { fields } = writeRunResults({
      outDir,
      scenario,
      seed: opts.seed,
      intervals,
      fromBlock,
      ledger,
      records,
      dsoDbPath: path.join(dsoDir, "dso.sqlite"),
    });
    const txs = ledger.transactions;
    const summary: LiveSummary = {
      ...fields,
      node: config.node as string,
      blocks: formatBlockSetting(blocks),
      intervalMs,
      allDrained: drained.every(Boolean),
      transport: {
        ...(tor
          ? {
              ...tor.description,
              faults,
              inventory: torInventory({
                records,
                minedTxHashes: new Set(txs.map((t) => t.hash.toLowerCase())),
                revertedTxHashes: new Set(txs.filter((t) => t.status !== 1).map((t) => t.hash.toLowerCase())),
                statsFiles: new Map(procs.map((p) => [p.id, path.join(agentsDir, `${p.id}.transport.json`)])),
                logFiles: new Map(procs.map((p) => [p.id, path.join(agentsDir, `${p.id}.log`)])),
                dsoTimeoutMs: TOR_DSO_TIMEOUT_MS,
                withdrawalsVia: zk ? "zk" : "dso",
              }),
            }
          : { kind: "direct" as const, hopDelayMs }),
        observedSourceAddresses: observer ? observedSources(observer) : [],
        ...(relayerObserver ? { relayerObservedSourceAddresses: observedSources(relayerObserver) } : {}),
      },
    };
    fs.writeFileSync(path.join(outDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    log(clearingLine(fields));
    if (failed.length > 0) {
      throw new PetraError(
        "PROCESS_FAILED",
        `${failed.length} household process(es) failed: ${failed.map((p) => p.id).join(", ")} (see ${agentsDir})`,
        { failed: failed.map((p) => p.id) },
      );
    }
    return summary;
  } finally {
    await blockProduction?.stop().catch(() => undefined);
    await group.stopAll();
    await observer?.close().catch(() => undefined);
    await relayerObserver?.close().catch(() => undefined);
    await dsoDelay?.close().catch(() => undefined);
    await deskDelay?.close().catch(() => undefined);
    // A network still bootstrapping stops what it started and rejects once aborted.
    torAbort.abort();
    await (tor ?? (await torStarting?.catch(() => undefined)))?.stop().catch(() => undefined);
  }
}

/** Every source address an observer saw: of connections closed so far and of requests it decoded. */
function observedSources(o: NetworkObserver): string[] {
  return [...new Set([...o.sourceAddresses(), ...o.transactions.map((t) => t.sourceAddress)])].sort();
}

/** Whether the agents reach this node through a network observer: a local http node (or one the runner starts). */
function observedNode(rpcUrl: string | undefined): boolean {
  if (rpcUrl === undefined) return true;
  const u = new URL(rpcUrl);
  return u.protocol === "http:" && u.hostname.startsWith("127.");
}

/** Reads a run directory's summary.json. */
export function readSummary(outDir: string): LiveSummary {
  return JSON.parse(fs.readFileSync(path.join(outDir, "summary.json"), "utf8")) as LiveSummary;
}
