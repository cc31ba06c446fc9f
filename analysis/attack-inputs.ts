import * as fs from "node:fs";
import * as path from "node:path";
import { type AttackResult, runAttack, writeAttackOutputs } from "../attacks/attack-runner";
import { type Dataset, parseDataset, readDataset, sortDataset, writeDataset } from "../attacks/dataset";
import { readDatasetFromRpc } from "../attacks/dataset-rpc";
import { readGroundTruth } from "../attacks/ground-truth";
import type { HeuristicName } from "../attacks/heuristic";
import { HEURISTIC_NAMES } from "../attacks/heuristics";
import { PetraError } from "../common/errors";

export interface AttackCommandOptions {
  run?: string;
  rpc?: string;
  market?: string;
  fromBlock?: number;
  toBlock?: number;
  observer?: string;
  dsoView?: string;
  truth?: string;
  heuristics?: string;
  without?: string;
  threshold: number;
}

/** Resolves the attack command's inputs (validating each), runs the attack and writes its outputs. */
export async function attacksFromOptions(
  opts: AttackCommandOptions,
  outDir: string,
): Promise<{ result: AttackResult; files: string[]; dataset: Dataset }> {
  if (Boolean(opts.run) === Boolean(opts.rpc)) {
    throw new PetraError("INVALID_ARGUMENT", "attack: give exactly one of --run DIR or --rpc URL");
  }
  let dataset: Dataset;
  let source: Record<string, unknown>;
  if (opts.run) {
    const ledger = path.join(opts.run, "ledger.jsonl");
    if (!fs.existsSync(ledger))
      throw new PetraError("LEDGER_UNREADABLE", `--run: ${ledger} does not exist`, { ledger });
    dataset = readDataset(ledger);
    const observer = path.join(opts.run, "observer.jsonl");
    if (!opts.observer && fs.existsSync(observer)) addObserver(dataset, observer);
    source = { run: path.resolve(opts.run) };
  } else {
    if (!opts.market) throw new PetraError("INVALID_ARGUMENT", "--market: required with --rpc");
    dataset = await readDatasetFromRpc({
      rpcUrl: opts.rpc as string,
      market: opts.market,
      fromBlock: opts.fromBlock,
      toBlock: opts.toBlock,
    });
    fs.mkdirSync(outDir, { recursive: true });
    writeDataset(path.join(outDir, "dataset.jsonl"), dataset);
    source = {
      rpc: opts.rpc,
      market: opts.market,
      fromBlock: dataset.header.fromBlock,
      toBlock: dataset.header.toBlock,
    };
  }
  if (opts.observer) addObserver(dataset, opts.observer);

  const heuristics = selectHeuristics(opts.heuristics, opts.without);
  const dsoView = opts.dsoView ? readDsoView(opts.dsoView) : undefined;
  const truth = opts.truth ? readGroundTruth(opts.truth) : undefined;
  const result = runAttack(dataset, {
    heuristics,
    threshold: opts.threshold,
    knowledge: dsoView ? { dsoView } : {},
    truth,
  });
  const files = writeAttackOutputs(outDir, result, { source, truth: opts.truth ? path.resolve(opts.truth) : null });
  return { result, files, dataset };
}

export function selectHeuristics(only?: string, without?: string): HeuristicName[] {
  const parse = (list: string, flag: string) =>
    list
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((n) => {
        if (!HEURISTIC_NAMES.includes(n as HeuristicName)) {
          throw new PetraError(
            "INVALID_ARGUMENT",
            `${flag}: unknown heuristic "${n}" (known: ${HEURISTIC_NAMES.join(", ")})`,
          );
        }
        return n as HeuristicName;
      });
  const chosen = only ? parse(only, "--heuristics") : [...HEURISTIC_NAMES];
  const off = new Set(without ? parse(without, "--without") : []);
  return chosen.filter((h) => !off.has(h));
}

function addObserver(ds: Dataset, file: string): void {
  const header = JSON.stringify({ ...ds.header });
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const parsed = parseDataset([header, ...lines], file);
  ds.observer.push(...parsed.observer);
  sortDataset(ds);
}

/** The DSO's records: JSON object, household id -> list of addresses. */
export function readDsoView(file: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `--dso-view: cannot read ${file} as JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new PetraError("INVALID_ARGUMENT", `--dso-view: ${file} must be an object of household id -> addresses`);
  }
  const view = new Map<string, string>();
  for (const [household, addrs] of Object.entries(json as Record<string, unknown>)) {
    if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === "string" && /^0x[0-9a-fA-F]{40}$/.test(a))) {
      throw new PetraError("INVALID_ARGUMENT", `--dso-view: household "${household}" must map to a list of addresses`);
    }
    for (const a of addrs as string[]) view.set(a.toLowerCase(), household);
  }
  return view;
}
