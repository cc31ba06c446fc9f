import * as fs from "node:fs";
import * as path from "node:path";
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
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
