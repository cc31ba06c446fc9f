import { Command, InvalidArgumentError, Option } from "commander";
import { MAX_RACE_BACKOFF } from "../agents/prosumer";
import type { SimChainKind } from "../agents/sim/anvil";
import { parseDelay } from "../agents/sim/distribution";
import { parseIntInRange, parsePositiveInt, resolveOut, withOut, withScenario, withSeed } from "./cli-options";
import { progressBar } from "./progress";
import { runSim, SIM_DEFAULTS, type SimRunOptions } from "./sim-runner";

function delaySpec(option: string): (value: string) => string {
  return (value) => {
    try {
      parseDelay(value, option);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    return value;
  };
}

/** Options every simulated run takes (petra sim, petra reproduce). */
export function withSimOptions(cmd: Command): Command {
  return cmd
    .option(
      "--blocks <delay>",
      `block-time model: exp:MEAN_MS (PoW-like), fixed:MS (PoA) or samples:FILE[:FIELD] (default ${SIM_DEFAULTS.blocks})`,
      delaySpec("--blocks"),
    )
    .option(
      "--rpc-latency <delay>",
      `round trip of each JSON-RPC call: constant:MS, exp:MEAN, normal:MEAN:SD, lognormal:MEDIAN:SIGMA, samples:FILE[:FIELD] (default ${SIM_DEFAULTS.rpcLatency})`,
      delaySpec("--rpc-latency"),
    )
    .option(
      "--message-latency <delay>",
      `round trip of each household <-> DSO message (default ${SIM_DEFAULTS.messageLatency})`,
      delaySpec("--message-latency"),
    )
    .addOption(
      new Option(
        "--chain <kind>",
        'the chain: "edr", the in-process Hardhat network, or "anvil", a child process that prunes old states and receipts (flat memory, but each block costs more as the market storage grows; README, Throughput)',
      )
        .choices(["edr", "anvil"])
        .default("edr"),
    )
    .option("--no-progress", "no progress bar");
}

export interface SimCliOptions {
  out: string;
  scenario: string;
  seed: number;
  intervals?: number;
  windowStart?: string;
  households?: number;
  intervalMs?: number;
  blocks?: string;
  rpcLatency?: string;
  messageLatency?: string;
  chain: SimChainKind;
  offerChoice?: string;
  raceBackoff?: number;
  progress: boolean;
}

export function simCommand(): Command {
  const cmd = new Command("sim").description(
    "run a scenario in simulated mode: the same DSO and household code on the in-process chain and a discrete-event clock, in one process; writes the same run directory as `petra live`",
  );
  withSimOptions(withSeed(withScenario(withOut(cmd, "runs/sim"), "case-study-9")))
    .option("--intervals <n>", "trade only the first N intervals of the scenario", parsePositiveInt("--intervals"))
    .option(
      "--window-start <HH:MM>",
      "start later than the scenario's window, at this time of day (e.g. 10:00 for daytime intervals)",
    )
    .option("--households <n>", "only the scenario's first N households", parsePositiveInt("--households"))
    .addOption(
      new Option(
        "--offer-choice <how>",
        'how consumers pick among usable asks: "lowest-id" (the paper) or "random" (default: the scenario\'s)',
      ).choices(["lowest-id", "random"]),
    )
    .option(
      "--race-backoff <n>",
      "after a consumer's accept loses a race, its asset sits out a random 0 to 2^min(losses, n) - 1 blocks; 0 is the paper's retry at the next block (default: the scenario's)",
      parseIntInRange("--race-backoff", 0, MAX_RACE_BACKOFF),
    )
    .option(
      "--interval-ms <ms>",
      "simulated length of one interval (default: the scenario's, e.g. 900000 for 15 minutes)",
      parsePositiveInt("--interval-ms"),
    )
    .action(async (opts: SimCliOptions) => {
      const outDir = resolveOut(opts.out);
      const summary = await runSim({
        scenario: opts.scenario,
        outDir,
        seed: opts.seed,
        intervals: opts.intervals,
        windowStart: opts.windowStart,
        households: opts.households,
        intervalMs: opts.intervalMs,
        blocks: opts.blocks,
        rpcLatency: opts.rpcLatency,
        messageLatency: opts.messageLatency,
        chain: opts.chain,
        offerChoice: opts.offerChoice as SimRunOptions["offerChoice"],
        raceBackoff: opts.raceBackoff,
        onProgress: opts.progress ? progressBar("sim") : undefined,
        log: (l) => console.log(l),
      });
      console.log(`run directory: ${outDir}`);
      if (!summary.conservation.energyConserved || !summary.conservation.moneyConserved)
        console.log("WARNING: conservation check failed, see summary.json");
    });
  return cmd;
}
