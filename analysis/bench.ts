import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { benchAttacks } from "./bench-attacks";
import { batchMintFormula, measureGasSnapshot, snapshotMarkdown, writeSnapshot } from "./gas-snapshot";

/**
 * `npm run bench`: every measurement the lab reports, each written to bench/ with its seed and
 * settings (and the gas snapshot to gas-snapshot.json, committed so that gas changes show in review).
 *
 * The gas snapshot and the attack benchmark run here; the others run as their own processes, one
 * after another, so that none of them shares the 2 cores with another. PETRA_BENCH_ONLY=gas,attacks
 * (a comma list of gas, attacks, zk, dso, live, sim, tor) runs a subset.
 */
const ROOT = path.join(__dirname, "..");
const OUT = path.join(ROOT, "bench");
const only = process.env.PETRA_BENCH_ONLY?.split(",").map((s) => s.trim());
const wanted = (name: string) => !only || only.includes(name);

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const failed: string[] = [];

  if (wanted("gas")) {
    const gas = await measureGasSnapshot();
    writeSnapshot(gas);
    const formula = batchMintFormula(gas);
    console.log(snapshotMarkdown(gas));
    console.log(`\naddEnergyAssets(n) = ${formula.fixed} + ${formula.perAsset} x n gas`);
    writeJson("gas.json", { network: "hardhat (in-process, EDR)", snapshot: gas, addEnergyAssetsFormula: formula });
  }

  if (wanted("attacks")) {
    // attack throughput on a synthetic day of 100 and 1,000 households (goal: 1,000 in <= 60 s)
    const attacks = [100, 1000].map((households) => benchAttacks({ households, intervals: 96, seed: 1 }));
    for (const a of attacks) {
      console.log(
        `attacks: ${a.households} households x ${a.intervals} intervals, ${a.events} events: median ${a.medianSeconds.toFixed(2)} s (${Math.round(a.eventsPerSecond)} events/s)`,
      );
    }
    writeJson("attacks.json", { machine: machine(), results: attacks });
  }

  const scripts: Array<[string, string, Record<string, string>]> = [
    ["zk", "analysis/bench-zk.ts", {}],
    ["dso", "analysis/bench-dso.ts", { PETRA_BENCH_OUT: path.join(OUT, "dso.json") }],
    ["live", "analysis/bench-live.ts", {}],
    ["sim", "analysis/bench-sim.ts", {}],
    ["tor", "analysis/bench-tor.ts", {}],
  ];
  for (const [name, script, env] of scripts) {
    if (!wanted(name)) continue;
    if (name === "tor" && spawnSync("tor", ["--version"]).error) {
      console.log("bench tor: skipped, Debian's tor is not installed (apt-get install -y tor)");
      continue;
    }
    console.log(`\nbench ${name}: ${script}`);
    const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", script], {
      cwd: ROOT,
      stdio: "inherit",
      env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"), ...env },
    });
    if (r.status !== 0) failed.push(name);
  }
  if (failed.length > 0) throw new Error(`bench: ${failed.join(", ")} failed`);
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(path.join(OUT, file), `${JSON.stringify(value, null, 2)}\n`);
}

function machine(): Record<string, unknown> {
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
