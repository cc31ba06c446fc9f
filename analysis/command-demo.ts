import { Command } from "commander";
import { resolveOut, withOut } from "./cli-options";
import { runDemo } from "./demo";

export function demoCommand(): Command {
  const cmd = new Command("demo").description(
    "a small end-to-end market on the in-process Hardhat chain: mint, ask, accept with partial overlap, deposit",
  );
  withOut(cmd, "runs/demo").action(async (opts: { out: string }) => {
    const hre = require("hardhat");
    const [dso, producer, consumer] = await hre.ethers.getSigners();
    await runDemo({ signers: [dso, producer, consumer], outDir: resolveOut(opts.out), log: (l) => console.log(l) });
  });
  return cmd;
}
