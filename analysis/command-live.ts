import { Command, InvalidArgumentError } from "commander";
import { parsePositiveInt, resolveOut, withOut, withScenario, withSeed } from "./cli-options";
import { parseBlockSetting } from "./live-blocks";
import { runLive } from "./live-runner";

function parseBlocks(value: string): string {
  try {
    parseBlockSetting(value, "--blocks");
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

export function liveCommand(): Command {
  const cmd = new Command("live").description(
    "run a scenario live: a JSON-RPC node, the DSO and one process per household over ZeroMQ on loopback; writes the run directory",
  );
  withSeed(withScenario(withOut(cmd, "runs/live"), "case-study-9"))
    .option(
      "--rpc <url>",
      "use this JSON-RPC node instead of starting hardhat node (its default dev accounts must be funded)",
    )
    .option("--node <kind>", "node to start when --rpc is not given: hardhat or anvil", "hardhat")
    .option("--intervals <n>", "trade only the first N intervals of the scenario", parsePositiveInt("--intervals"))
    .option(
      "--households <n>",
      "run only the scenario's first N households (one process each)",
      parsePositiveInt("--households"),
    )
    .option(
      "--interval-ms <ms>",
      "wall length of one trading interval (default: the scenario's)",
      parsePositiveInt("--interval-ms"),
    )
    .option(
      "--blocks <mode>",
      'block production: "automine", "fixed:MS" or "exp:MEAN_MS" (default: the scenario\'s)',
      parseBlocks,
    )
    .action(
      async (opts: {
        out: string;
        scenario: string;
        seed: number;
        rpc?: string;
        node: string;
        intervals?: number;
        households?: number;
        intervalMs?: number;
        blocks?: string;
      }) => {
        if (opts.node !== "hardhat" && opts.node !== "anvil")
          throw new InvalidArgumentError(`--node must be hardhat or anvil, got "${opts.node}"`);
        const outDir = resolveOut(opts.out);
        const summary = await runLive({
          scenario: opts.scenario,
          outDir,
          seed: opts.seed,
          rpcUrl: opts.rpc,
          node: opts.node,
          intervals: opts.intervals,
          households: opts.households,
          intervalMs: opts.intervalMs,
          blocks: opts.blocks,
          log: (l) => console.log(l),
        });
        console.log(`run directory: ${outDir}`);
        if (!summary.conservation.energyConserved || !summary.conservation.moneyConserved) {
          console.log("WARNING: conservation check failed, see summary.json");
        }
      },
    );
  return cmd;
}
