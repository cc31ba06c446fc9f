import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NetworkObserver } from "../agents/network-observer";
import { startHardhatNode } from "../agents/rpc-node-process";
import { assertTorInstalled, TorNetwork } from "../agents/tor/tor-network";
import { DirectTransport } from "../agents/transport-direct";
import { TorTransport } from "../agents/transport-tor";

/**
 * Tor latency bench: `npx ts-node analysis/bench-tor.ts` (or `npx hardhat run --no-compile ...`).
 * Writes bench/tor.json with raw samples (the simulated mode replays them) and medians.
 *
 * Delay model (no netem in this kernel): `delayMs` = d is a one-way delay per link.
 *  - the RPC node is reached through a NetworkObserver holding each chunk d ms per direction (the
 *    household -> node link, or exit -> node, or onion host -> node), +2d per round trip;
 *  - in the Tor network every OR link (client -> guard -> middle -> exit, and the onion circuits)
 *    gets d per direction from a DelayProxy in front of each relay's ORPort (hopDelayMs).
 * Expected extra round-trip time, keep-alive stream: direct 2d; exit 2d x 4 links = 8d; onion: the
 * client's 3 links to the rendezvous point, the service's 4 (its rendezvous circuits have an extra
 * hop), and the service -> node link, 2d x 8 = 16d. Measured (d = 20): 45, 169, 339 ms against
 * 40, 160, 320 ms plus the undelayed cost (4, 6, 12 ms): the model holds.
 */

export interface TorBenchOptions {
  /** Samples per mode. Default 40. */
  samples?: number;
  /** One-way per-link delay of the delayed runs. Default 20 ms. */
  delayMs?: number;
  /** Extra bootstraps (network + one onion service, no traffic) for bootstrap-time samples. Default 3. */
  bootstrapRuns?: number;
}

interface ModeResult {
  mode: "direct" | "tor-exit" | "tor-exit-new-circuit" | "tor-onion";
  delayMs: number;
  samplesMs: number[];
  medianMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeCalls(n: number, call: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call(i);
    out.push(performance.now() - t0);
  }
  return out;
}

async function runOnce(delayMs: number, samples: number): Promise<{ bootstrapMs: number; modes: ModeResult[] }> {
  const node = await startHardhatNode();
  const observer = await NetworkObserver.start({ targetPort: node.port, delayMs });
  let net: TorNetwork | undefined;
  try {
    net = await TorNetwork.start({
      hopDelayMs: delayMs,
      onionServices: [{ name: "rpc", targetPort: observer.port, virtualPort: 80 }],
    });
    const url = observer.url();
    const modes: ModeResult[] = [];
    const record = (mode: ModeResult["mode"], samplesMs: number[]) => {
      modes.push({
        mode,
        delayMs,
        samplesMs: samplesMs.map((x) => Math.round(x * 100) / 100),
        medianMs: median(samplesMs),
      });
      console.log(`delay ${delayMs} ms  ${mode.padEnd(22)} median ${median(samplesMs).toFixed(1)} ms`);
    };

    const direct = new DirectTransport({ sourceAddressByIdentity: { h: "127.0.0.2" } });
    const dp = direct.jsonRpcProvider(url, "h", { chainId: 31337 });
    await dp.send("eth_blockNumber", []); // warm the keep-alive connection
    record("direct", await timeCalls(samples, () => dp.send("eth_blockNumber", [])));
    await direct.close();

    const tor = new TorTransport({ client: net.clients[0], chainId: 31337 });
    const ep = tor.jsonRpcProvider(url, "h");
    await ep.send("eth_blockNumber", []);
    record("tor-exit", await timeCalls(samples, () => ep.send("eth_blockNumber", [])));
    // A fresh identity per call: SOCKS handshake, a new circuit and a new stream each time.
    record(
      "tor-exit-new-circuit",
      await timeCalls(Math.min(samples, 15), () => {
        tor.newCircuit("h");
        return ep.send("eth_blockNumber", []);
      }),
    );
    await tor.close();

    const onion = new TorTransport({
      client: net.clients[0],
      chainId: 31337,
      onionRoutes: { [url]: `http://${net.onion("rpc").hostname}:80` },
    });
    const op = onion.jsonRpcProvider(url, "h");
    await op.send("eth_blockNumber", []);
    record("tor-onion", await timeCalls(samples, () => op.send("eth_blockNumber", [])));
    await onion.close();
    return { bootstrapMs: net.bootstrapMs, modes };
  } finally {
    await net?.stop();
    await observer.close();
    await node.stop();
  }
}

export async function benchTor(options: TorBenchOptions = {}): Promise<Record<string, unknown>> {
  const samples = options.samples ?? 40;
  const delayMs = options.delayMs ?? 20;
  const torVersion = assertTorInstalled();
  const runs = [];
  for (const d of [0, delayMs]) runs.push({ delayMs: d, ...(await runOnce(d, samples)) });
  const bootstrapSamplesMs = runs.filter((r) => r.delayMs === 0).map((r) => r.bootstrapMs);
  for (let i = 0; i < (options.bootstrapRuns ?? 3); i++) {
    // "Ready" = every client at 100%, exits usable, onion descriptor uploaded and reachable.
    const net = await TorNetwork.start({ onionServices: [{ name: "probe-only", targetPort: 9, virtualPort: 80 }] });
    bootstrapSamplesMs.push(net.bootstrapMs);
    await net.stop();
    console.log(`bootstrap ${(net.bootstrapMs / 1000).toFixed(1)} s`);
  }
  return {
    config: {
      samples,
      delayMs,
      network: { authorities: 3, relays: 1, exits: 2, clients: 1, onionHosts: 1 },
      torVersion,
    },
    machine: { cpus: os.cpus().length, node: process.version, loadAverage: os.loadavg() },
    model:
      "d one-way per link; RPC link delayed by a NetworkObserver, every OR link by a DelayProxy per relay ORPort. " +
      "Expected extra RTT: direct 2d, exit 8d, onion 16d (service-side rendezvous circuits have 4 hops). " +
      "Keep-alive streams except tor-exit-new-circuit (new SOCKS credentials, circuit and stream per call).",
    bootstrapMs: runs.map((r) => ({ delayMs: r.delayMs, ms: Math.round(r.bootstrapMs) })),
    bootstrapSamplesMs: bootstrapSamplesMs.map((x) => Math.round(x)),
    bootstrapMedianMs: Math.round(median(bootstrapSamplesMs)),
    results: runs.flatMap((r) => r.modes),
  };
}

async function main(): Promise<void> {
  const result = await benchTor({
    samples: Number(process.env.PETRA_BENCH_TOR_SAMPLES ?? 40),
    delayMs: Number(process.env.PETRA_BENCH_TOR_DELAY_MS ?? 20),
  });
  const outDir = path.join(__dirname, "..", "bench");
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "tor.json"), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.join(outDir, "tor.json")}`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
