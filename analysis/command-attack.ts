import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import type { AttackResult } from "../attacks/attack-runner";
import type { Dataset } from "../attacks/dataset";
import { type AttackCommandOptions, attacksFromOptions } from "./attack-inputs";
import { resolveOut, withOut } from "./cli-options";

export function attackCommand(): Command {
  const cmd = new Command("attack")
    .description(
      "link pseudonyms to households and infer usage patterns from a ledger (a run directory or any JSON-RPC node); score with --truth",
    )
    .option(
      "--run <dirs...>",
      "run directories: reads each one's ledger.jsonl (and observer.jsonl where present); several give means and 95% intervals",
    )
    .option("--rpc <url>", "read the ledger from this JSON-RPC node instead (with --market)")
    .option("--market <address>", "EnergyMarket address, with --rpc")
    .option("--mixer <addresses...>", "Mixer pool addresses, with --rpc, to read their deposits and withdrawals")
    .option("--vault <addresses...>", "AllowanceVault addresses, with --rpc, to read their allowance events")
    .option("--from-block <n>", "first block to read, with --rpc", parseBlock, undefined)
    .option("--to-block <n>", "last block to read, with --rpc (default latest)", parseBlock, undefined)
    .option("--observer <file>", "a network observer log (JSONL) to add to the dataset")
    .option(
      "--dso-view <file>",
      "the DSO's own records (JSON: household id -> addresses), for the dso-view upper bound",
    )
    .option(
      "--desk-view <file>",
      "the DSO's allowance-desk records of a zk run (desk-view.json: deposit-backs and redemptions), for desk-view",
    )
    .option("--truth <files...>", "ground truth to score against, one per --run (read only by the scoring step)")
    .option("--heuristics <list>", "comma-separated heuristics to run (default: all)")
    .option("--without <list>", "comma-separated heuristics to switch off")
    .option("--threshold <score>", "links below this score do not merge clusters", parseScore, 0.5)
    .option("--max-cluster <n>", "no cluster grows beyond N addresses (strongest links merge first)", parseCount);
  withOut(cmd, "runs/attack").action(async (opts: AttackCommandOptions & { out: string }) => {
    const out = resolveOut(opts.out);
    for (const { result, files, dataset } of await attacksFromOptions(opts, out)) report(result, files, dataset);
  });
  return cmd;
}

function report(result: AttackResult, files: string[], dataset: Dataset): void {
  console.log(
    `attack: ${dataset.events.length} events, ${dataset.transactions.length} transactions, ${result.addresses} addresses`,
  );
  for (const [h, n] of Object.entries(result.linksPerHeuristic)) console.log(`  ${h.padEnd(18)} ${n} links`);
  const combined = result.scores?.combined;
  if (combined) {
    const l = combined.linkage;
    console.log(
      `  combined: pairwise precision ${l.precision.toFixed(3)} recall ${l.recall.toFixed(3)} F1 ${l.f1.toFixed(3)} ARI ${l.ari.toFixed(3)}`,
    );
    const r = combined.reidentification;
    if (r)
      console.log(
        `  re-identification: top-1 ${r.top1.toFixed(3)} (chance ${r.chanceTop1.toFixed(3)}), top-5 ${r.top5.toFixed(3)}`,
      );
  }
  for (const f of files) console.log(`  wrote ${path.relative(process.cwd(), f) || f}`);
}

function parseBlock(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`must be a block number, got "${v}"`);
  return n;
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a positive integer, got "${v}"`);
  return n;
}

function parseScore(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`must be a score in [0, 1], got "${v}"`);
  return n;
}
