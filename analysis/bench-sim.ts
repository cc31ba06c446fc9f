/**
 * Simulated-mode throughput (PETRA_BENCH_ONLY=sim): market transactions per wall second, wall time
 * for N households x K intervals, CPU time of both threads, and where the main thread's time goes,
 * from a CPU profile of the run: signing and encoding (ethers, @noble, the native secp256k1 and
 * keccak add-ons), the EVM (Hardhat/EDR's work on this thread; "evm-wait" is the event loop idle
 * while EDR's native thread executes), agent logic (agents/, attacks/), the rest. Native frames
 * count where the script that called them does.
 *
 * Each run names its chain: "edr" (the in-process Hardhat network; "evm-wait" is then the event
 * loop idle while EDR's native thread executes) or "anvil" (a child process that prunes history;
 * "evm-wait" is the wait for its answers, and its own CPU time is reported apart).
 *
 * PETRA_BENCH_SIM="100x96/anvil,1000x4@10:00/edr" sets the runs (households x intervals, optionally
 * from a time of day, optionally on a chain, default edr). The default ends with whole days: 100
 * households (about 2 minutes), then 1,000 households (about 27 minutes, without the profiler).
 * The shorter runs start at 10:00: a generated day's first hours are night (no PV, no offers), and
 * intervals without trades would make the extrapolation to a day far too kind. Each run reports
 * the CPU time of the main thread, EDR's threads and the rest (threadCpuS): the main thread's
 * share of the wall time is how close the agents' JavaScript is to being the ceiling.
 */
import * as fs from "node:fs";
import { Session } from "node:inspector/promises";
import * as os from "node:os";
import * as path from "node:path";
import { PerformanceObserver, constants as perfConstants } from "node:perf_hooks";
import { cpuFromProcStat } from "../agents/process-group";
import type { SimChainKind } from "../agents/sim/anvil";
import { cryptoBackend } from "../common/fast-crypto";
import { loadScenario } from "./scenario";
import { runSim } from "./sim-runner";

interface ProfileNode {
  id: number;
  callFrame: { url: string; functionName: string };
  children?: number[];
}

function category(url: string): string {
  if (url === "") return "native-other";
  if (/node_modules\/(ethers|@noble|@adraffy|secp256k1|keccak)\//.test(url) || url.includes("common/fast-crypto"))
    return "signing-and-encoding";
  if (/node_modules\/(hardhat|@nomicfoundation)/.test(url)) return "evm";
  if (/\/(agents|attacks)\//.test(url) && !url.includes("node_modules")) return "agent-logic";
  if (/node_modules\/better-sqlite3/.test(url)) return "dso-account-book";
  return "other";
}

/** Runs longer than this (households x intervals) are not profiled. */
const MAX_PROFILED_HOUSEHOLD_INTERVALS = 20_000;

async function unprofiled<T>(fn: () => Promise<T>): Promise<{ result: T; shares: null }> {
  return { result: await fn(), shares: null };
}

async function profiled<T>(fn: () => Promise<T>): Promise<{ result: T; shares: Record<string, number> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  const result = await fn();
  const { profile } = (await session.post("Profiler.stop")) as unknown as {
    profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  };
  session.disconnect();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  // Native code run on this thread (an add-on's signing or hashing, the EVM's synchronous part)
  // shows as a frame without a script: it counts where the script that called it does.
  const scriptOf = (id: number): string => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? "";
      if (url !== "") return url;
    }
    return "";
  };
  const time = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const n = byId.get(id);
    const name = n?.callFrame.functionName ?? "";
    const cat =
      name === "(idle)"
        ? "evm-wait"
        : name === "(garbage collector)"
          ? "gc"
          : name === "(program)"
            ? "other"
            : category(scriptOf(id));
    time.set(cat, (time.get(cat) ?? 0) + dt);
  });
  return { result, shares: Object.fromEntries([...time].map(([k, t]) => [k, Number((t / total).toFixed(3))])) };
}

/**
 * CPU seconds of this process's threads so far, by thread id, with each thread's role: the main
 * thread (agents, and the part of each chain call that runs on it), EDR's worker threads (tokio,
 * where EDR executes and mines), and the rest (V8's GC helpers, libuv). Linux only; empty elsewhere.
 */
function threadCpuS(): Map<string, { role: string; s: number }> {
  const out = new Map<string, { role: string; s: number }>();
  let tasks: string[];
  try {
    tasks = fs.readdirSync("/proc/self/task");
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const { name, cpuS } = cpuFromProcStat(fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8"));
      const role = Number(tid) === process.pid ? "main" : name.startsWith("tokio") ? "edr" : "other";
      out.set(tid, { role, s: cpuS });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/**
 * The main thread's GC pauses while a run is watched, in ms by kind (minor: scavenges of the young
 * generation; major: mark-compacts, whose cost grows with the live heap; incremental: marking
 * steps), and their count. A day's heap grows with its ledger and pseudonyms: this shows what that costs.
 */
function watchGc(): { stop(): { minorMs: number; majorMs: number; incrementalMs: number; count: number } } {
  const t = { minorMs: 0, majorMs: 0, incrementalMs: 0, count: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      t.count++;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) t.minorMs += e.duration;
      else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) t.majorMs += e.duration;
      else t.incrementalMs += e.duration;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return {
    stop: () => {
      observer.disconnect();
      return {
        minorMs: Math.round(t.minorMs),
        majorMs: Math.round(t.majorMs),
        incrementalMs: Math.round(t.incrementalMs),
        count: t.count,
      };
    },
  };
}

/**
 * CPU seconds each role's threads spent between two readings, thread by thread: a thread that
 * ended meanwhile (an earlier run's EDR workers) drops out instead of counting against the rest,
 * and one that ended before the second reading is missing from it (its time is lost).
 */
function threadCpuDelta(
  after: Map<string, { role: string; s: number }>,
  before: Map<string, { role: string; s: number }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [tid, t] of after) out[t.role] = (out[t.role] ?? 0) + t.s - (before.get(tid)?.s ?? 0);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Number(v.toFixed(1))]));
}

async function main(): Promise<void> {
  // anvil first: the process's peak memory only grows, and EDR's runs would hide anvil's.
  const spec =
    process.env.PETRA_BENCH_SIM ??
    "100x8@10:00/anvil,1000x2@10:00/anvil,100x8@10:00/edr,1000x2@10:00/edr,100x96/edr,1000x96/edr";
  const runs = spec.split(",").map((s) => {
    const m = /^(\d+)x(\d+)(?:@(\d\d:\d\d))?(?:\/(edr|anvil))?$/.exec(s.trim());
    if (!m) throw new Error(`PETRA_BENCH_SIM: "${s}" is not HOUSEHOLDSxINTERVALS[@HH:MM][/edr|/anvil]`);
    return {
      households: Number(m[1]),
      intervals: Number(m[2]),
      windowStart: m[3],
      chain: (m[4] ?? "edr") as SimChainKind,
    };
  });
  const seed = 1;
  const results = [];
  for (const r of runs) {
    const scenario = r.households <= 100 ? "generated-100" : "generated-1000";
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-bench-sim-"));
    const cpu0 = process.cpuUsage();
    const threads0 = threadCpuS();
    const gc = watchGc();
    const load0 = os.loadavg()[0] ?? 0;
    // A whole day of 1,000 households runs without the profiler: its samples would take
    // gigabytes, and the shorter runs show where the time goes.
    const profile = r.households * r.intervals <= MAX_PROFILED_HOUSEHOLD_INTERVALS;
    const { result, shares } = await (profile ? profiled : unprofiled)(() =>
      runSim({
        scenario,
        households: r.households,
        intervals: r.intervals,
        windowStart: r.windowStart,
        outDir,
        seed,
        blocks: "exp:12000",
        offerChoice: "random",
        observer: false,
        chain: r.chain,
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    const threads = threadCpuDelta(threadCpuS(), threads0);
    const gcPauses = gc.stop();
    const perInterval = result.wall.tradingS / r.intervals;
    const row = {
      chain: r.chain,
      scenario,
      households: r.households,
      intervals: r.intervals,
      windowStart: r.windowStart ?? "00:00",
      seed,
      offerChoice: "random",
      raceBackoff: loadScenario(scenario).file.prosumer.raceBackoff,
      blocks: result.blocks,
      transactions: result.transactions,
      marketTxPerWallS: Number(result.throughput.marketTxPerWallS.toFixed(1)),
      allTxPerWallS: Number((result.transactions.total / result.wall.tradingS).toFixed(1)),
      wallS: result.wall,
      wallPerIntervalS: Number(perInterval.toFixed(2)),
      intervalWallS: splitByInterval(
        result.throughput.wallByInterval.map((e) => e.wallS),
        result.wall.tradingS,
      ),
      intervalChainS: splitByInterval(
        result.throughput.wallByInterval.map((e) => e.chainS),
        result.throughput.tradingChainS,
      ),
      intervalHeapMB: result.throughput.wallByInterval.map((e) => e.heapMB),
      extrapolatedWallS96: Number((perInterval * 96 + result.wall.setupS + result.wall.outputS).toFixed(0)),
      rpcCalls: result.throughput.rpcCalls,
      rpcCallsByMethod: result.throughput.rpcCallsByMethod,
      loadAverage1m: Number(os.loadavg()[0]?.toFixed(2)),
      loadAverage1mAtStart: Number(load0.toFixed(2)),
      // Both threads (agents and the EVM's): less sensitive to a shared machine than wall time.
      cpuS: Number(((cpu.user + cpu.system) / 1e6).toFixed(1)),
      threadCpuS: threads,
      gcPauses,
      cpuMsPerMarketTx: Number(
        (
          (cpu.user + cpu.system) /
          1000 /
          Math.max(1, result.throughput.marketTxPerWallS * result.wall.tradingS)
        ).toFixed(2),
      ),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      // anvil's own process: its CPU time is not in cpuS.
      ...(result.chainProcess
        ? { chainProcessCpuS: result.chainProcess.cpuS, chainProcessPeakRssMB: result.chainProcess.peakRssMB }
        : {}),
      events: result.throughput.events,
      timeShares: shares,
      conserved: result.conservation.energyConserved && result.conservation.moneyConserved,
    };
    results.push(row);
    console.log(JSON.stringify(row));
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  const out = {
    kind: "petra-bench-sim",
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, crypto: cryptoBackend },
    measuredAt: new Date().toISOString(),
    goals: { marketTxPerWallS: 500, wallS1000x96: 900 },
    note: "peakRssMB is the process's peak so far (runs go in order; anvil's runs first); chainProcessCpuS and chainProcessPeakRssMB are anvil's own. windowStart 10:00: daytime intervals, which trade; extrapolatedWallS96 scales them to a whole day, so it overestimates (night intervals trade nothing). rpcCallsByMethod.wallMs is the wall time the in-process chain took per JSON-RPC method. threadCpuS: CPU seconds of this process's main thread, EDR's threads and the rest (GC helpers). gcPauses: the main thread's GC pauses in ms (minor, major, incremental) and their count. intervalWallS: wall seconds per simulated interval, the lead interval first, the last until trading ended (the deposits after it included); intervalChainS: of which the chain spent answering calls; intervalHeapMB: the JavaScript heap in use when each interval began. timeShares is null for runs too long to profile. loadAverage1m: the machine is shared, timings scale with it",
    results,
  };
  fs.writeFileSync(path.join(__dirname, "..", "bench", "sim.json"), `${JSON.stringify(out, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);

/**
 * What each simulated interval took (the lead interval first; the last runs until trading ended,
 * deposits after the last interval included), from a running total read when the clock entered
 * each interval and the total at the end.
 */
function splitByInterval(totals: readonly number[], end: number): number[] {
  return totals.map((t, i) => Number(((totals[i + 1] ?? end) - t).toFixed(2)));
}
