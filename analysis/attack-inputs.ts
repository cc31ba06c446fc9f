import * as fs from "node:fs";
import * as path from "node:path";
import { aggregateRuns } from "../attacks/aggregate";
import { type AttackResult, runAttack, writeAttackOutputs } from "../attacks/attack-runner";
import { type Dataset, parseObserverLog, readDataset, sortDataset, writeDataset } from "../attacks/dataset";
import { readDatasetFromRpc } from "../attacks/dataset-rpc";
import { readGroundTruth } from "../attacks/ground-truth";
import type { HeuristicName } from "../attacks/heuristic";
import type { DeskView } from "../attacks/heuristic-desk-view";
import { HEURISTIC_NAMES } from "../attacks/heuristics";
import { PetraError } from "../common/errors";

export interface AttackCommandOptions {
  run?: string[];
  rpc?: string;
  market?: string;
  /** Mixer pools, with --rpc (one per denomination). */
  mixer?: string[];
  /** Allowance vaults, with --rpc (one per direction). */
  vault?: string[];
  fromBlock?: number;
  toBlock?: number;
  observer?: string;
  dsoView?: string;
  deskView?: string;
  truth?: string[];
  heuristics?: string;
  without?: string;
  threshold: number;
  maxCluster?: number;
}

export interface AttackOutcome {
  result: AttackResult;
  files: string[];
  dataset: Dataset;
}

/**
 * Resolves the attack command's inputs (validating each), runs the attack and writes its outputs.
 * Several --run directories (e.g. one per seed) are attacked one by one into subdirectories, and
 * attack-summary.json gives every metric's mean and 95% interval across them.
 */
export async function attacksFromOptions(opts: AttackCommandOptions, outDir: string): Promise<AttackOutcome[]> {
  const runs = opts.run ?? [];
  if (runs.length > 0 === Boolean(opts.rpc)) {
    throw new PetraError("INVALID_ARGUMENT", "attack: give exactly one of --run DIR or --rpc URL");
  }
  const truths = opts.truth ?? [];
  const inputs: Array<string | undefined> = runs.length > 0 ? runs : [undefined];
  if (truths.length > 0 && truths.length !== inputs.length) {
    throw new PetraError("INVALID_ARGUMENT", `--truth: give one per --run (${inputs.length}), got ${truths.length}`);
  }
  if (inputs.length === 1) return [await attackOne(opts, inputs[0], truths[0], outDir)];

  const outcomes: AttackOutcome[] = [];
  const names = new Set<string>();
  for (const [i, run] of runs.entries()) {
    let name = path.basename(path.resolve(run));
    if (names.has(name)) name = `${name}-${i}`;
    names.add(name);
    outcomes.push(await attackOne(opts, run, truths[i], path.join(outDir, name)));
  }
  const summary = {
    runs: runs.map((run) => ({ run: path.resolve(run), seed: seedOf(run) })),
    metrics: aggregateRuns(outcomes.map((o) => o.result.scores ?? {})),
  };
  const file = path.join(outDir, "attack-summary.json");
  fs.writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  outcomes[outcomes.length - 1]?.files.push(file);
  return outcomes;
}

/** The seed a run directory was made with, from its config.json where it has one. */
function seedOf(run: string): number | null {
  try {
    const seed = JSON.parse(fs.readFileSync(path.join(run, "config.json"), "utf8")).seed;
    return typeof seed === "number" ? seed : null;
  } catch {
    return null;
  }
}

async function attackOne(
  opts: AttackCommandOptions,
  run: string | undefined,
  truthFile: string | undefined,
  outDir: string,
): Promise<AttackOutcome> {
  let dataset: Dataset;
  let source: Record<string, unknown>;
  if (run) {
    const ledger = path.join(run, "ledger.jsonl");
    if (!fs.existsSync(ledger))
      throw new PetraError("LEDGER_UNREADABLE", `--run: ${ledger} does not exist`, { ledger });
    dataset = readDataset(ledger);
    const observer = path.join(run, "observer.jsonl");
    if (!opts.observer && fs.existsSync(observer)) addObserver(dataset, observer);
    source = { run: path.resolve(run) };
  } else {
    if (!opts.market) throw new PetraError("INVALID_ARGUMENT", "--market: required with --rpc");
    dataset = await readDatasetFromRpc({
      rpcUrl: opts.rpc as string,
      market: opts.market,
      mixers: opts.mixer,
      vaults: opts.vault,
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
  const deskView = opts.deskView ? readDeskView(opts.deskView) : undefined;
  const truth = truthFile ? readGroundTruth(truthFile) : undefined;
  const result = runAttack(dataset, {
    heuristics,
    threshold: opts.threshold,
    maxClusterSize: opts.maxCluster,
    knowledge: { ...(dsoView ? { dsoView } : {}), ...(deskView ? { deskView } : {}) },
    truth,
  });
  const files = writeAttackOutputs(outDir, result, { source, truth: truthFile ? path.resolve(truthFile) : null });
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
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `--observer: cannot read ${file} (${(e as Error).message})`, { file });
  }
  ds.observer.push(...parseObserverLog(text.split("\n"), file));
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

/**
 * The allowance desk's records (desk-view.json of a zk run): { depositBacks: [{ pseudonym,
 * denomination, count, atMs }], redemptions: [{ household, denomination, count, atMs }] }.
 */
export function readDeskView(file: string): DeskView {
  const fail = (what: string): never => {
    throw new PetraError("INVALID_ARGUMENT", `--desk-view: ${file}: ${what}`, { file });
  };
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    return fail(`cannot read it as JSON (${(e as Error).message})`);
  }
  const o = json as Record<string, unknown> | null;
  if (!o || typeof o !== "object" || !Array.isArray(o.depositBacks) || !Array.isArray(o.redemptions)) {
    return fail("must be an object with arrays depositBacks and redemptions");
  }
  const rows = (list: unknown[], name: string, key: "pseudonym" | "household") =>
    list.map((r, i) => {
      const x = r as Record<string, unknown> | null;
      const who = x?.[key];
      if (typeof who !== "string" || (key === "pseudonym" && !/^0x[0-9a-fA-F]{40}$/.test(who)))
        fail(`${name}[${i}].${key} must be ${key === "pseudonym" ? "an address" : "a household id"}`);
      if (typeof x?.denomination !== "string" || !/^[1-9][0-9]*$/.test(x.denomination))
        fail(`${name}[${i}].denomination must be a positive integer as a decimal string`);
      if (!Number.isInteger(x?.count) || (x?.count as number) < 1) fail(`${name}[${i}].count must be an integer >= 1`);
      if (!Number.isFinite(x?.atMs)) fail(`${name}[${i}].atMs must be a number`);
      return { [key]: who, denomination: x?.denomination, count: x?.count, atMs: x?.atMs };
    });
  return {
    depositBacks: rows(o.depositBacks, "depositBacks", "pseudonym") as DeskView["depositBacks"],
    redemptions: rows(o.redemptions, "redemptions", "household") as DeskView["redemptions"],
  };
}
