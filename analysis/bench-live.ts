import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PAPER_CLEARING_S } from "./clearing-times";
import { runLive } from "./live-runner";

/**
 * The clearing-time distribution of the paper's case study on a live local chain, for one stated
 * block-time setting: `npx ts-node --transpile-only analysis/bench-live.ts [BLOCKS] [INTERVAL_MS] [INTERVALS] [NODE]`
 * (defaults exp:5000, 60000, 4, hardhat). Writes bench/live-clearing-<blocks>-<intervals>x<intervalMs>ms.json and keeps the
 * run directory under the OS temp dir. Wall time is (INTERVALS + 1) x INTERVAL_MS plus ~20 s.
 *
 * The interval must leave room for the first-come-first-served races: with two producers and
 * seven consumers, each interval needs about four post/accept rounds of two blocks each.
 */
async function main(argv: string[]): Promise<void> {
  const blocks = argv[0] ?? "exp:5000";
  const intervalMs = Number(argv[1] ?? 60_000);
  const intervals = Number(argv[2] ?? 4);
  const node = (argv[3] ?? "hardhat") as "hardhat" | "anvil";
  const seed = 1;
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-bench-live-"));
  const started = Date.now();
  const summary = await runLive({
    scenario: "case-study-9",
    outDir,
    seed,
    node,
    intervals,
    intervalMs,
    blocks,
    log: (l) => console.log(l),
  });
  const result = {
    what: "PETra case study (2 producers, 7 consumers), clearing time = postOffer sent -> acceptOffer mined, as the paper measured",
    measuredAt: new Date(started).toISOString(),
    machine: `${os.cpus().length} cores, ${os.type()} ${os.release()}, Node ${process.version} (shared with other jobs)`,
    settings: { node, blocks, intervalMs, intervals, seed, scenario: "case-study-9", runDirectory: outDir },
    clearingS: summary.clearingS,
    paperClearingS: PAPER_CLEARING_S,
    ratioToPaper: summary.ratioToPaper,
    offers: summary.offers,
    transactions: summary.transactions,
    blocksMined: summary.blocksMined,
    conserved: summary.conservation.energyConserved && summary.conservation.moneyConserved,
    allDrained: summary.allDrained,
  };
  const file = path.join(
    __dirname,
    "..",
    "bench",
    `live-clearing-${blocks.replace(":", "-")}-${intervals}x${intervalMs}ms.json`,
  );
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
