import * as fs from "node:fs";
import * as path from "node:path";
import { benchAttacks } from "./bench-attacks";
import { batchMintFormula, measureGasSnapshot, snapshotMarkdown, writeSnapshot } from "./gas-snapshot";

/**
 * `npm run bench`: every measurement the lab reports, written to bench/ (and the gas snapshot to
 * gas-snapshot.json, committed so that every gas change shows in review).
 */
async function main(): Promise<void> {
  const outDir = path.join(__dirname, "..", "bench");
  fs.mkdirSync(outDir, { recursive: true });

  const gas = await measureGasSnapshot();
  writeSnapshot(gas);
  const formula = batchMintFormula(gas);
  console.log(snapshotMarkdown(gas));
  console.log(`\naddEnergyAssets(n) = ${formula.fixed} + ${formula.perAsset} x n gas`);
  fs.writeFileSync(
    path.join(outDir, "gas.json"),
    `${JSON.stringify({ network: "hardhat (in-process, EDR)", snapshot: gas, addEnergyAssetsFormula: formula }, null, 2)}\n`,
  );

  // attack throughput: a synthetic day of 100 and 1,000 households (goal: 1,000 in <= 60 s)
  const attacks = [100, 1000].map((households) => benchAttacks({ households, intervals: 96, seed: 1 }));
  for (const a of attacks) {
    console.log(
      `attacks: ${a.households} households x ${a.intervals} intervals, ${a.events} events: median ${a.medianSeconds.toFixed(2)} s (${Math.round(a.eventsPerSecond)} events/s)`,
    );
  }
  fs.writeFileSync(
    path.join(outDir, "attacks.json"),
    `${JSON.stringify({ machine: machine(), results: attacks }, null, 2)}\n`,
  );
}

function machine(): Record<string, unknown> {
  const os = require("node:os") as typeof import("node:os");
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
