import * as fs from "node:fs";
import * as path from "node:path";
import { exportDsoView } from "../agents/account-book";
import { exportDeskView } from "../agents/dso-allowance-desk";
import { PseudonymWallet } from "../agents/pseudonym-wallet";
import { type Dataset, marketEvents, writeDataset } from "../attacks/dataset";
import { getOrInsert } from "../common/collections";
import { check } from "../common/errors";
import { createRng } from "../common/rng";
import {
  type ClearingRow,
  clearingCsv,
  clearingRows,
  type Distribution,
  distribution,
  type HouseholdRecord,
  PAPER_CLEARING_S,
} from "./clearing-times";
import { type Conservation, conservation } from "./live-ledger";
import { loadScenario, type Scenario } from "./scenario";

/**
 * What a run directory holds whatever ran the market (live processes or the simulated clock), and
 * the summary fields computed from it. Both runners write these the same way, so that the attack
 * suite and the figures read either.
 */
export interface RunResultFields {
  scenario: string;
  seed: number;
  intervals: number;
  households: number;
  withdrawals: { accepted: number; refused: number };
  offers: { posted: number; cleared: number };
  /** postOffer sent -> acceptOffer mined, seconds. */
  clearingS: Distribution;
  paperClearingS: typeof PAPER_CLEARING_S;
  /** This run's statistic divided by the paper's. */
  ratioToPaper: Record<keyof typeof PAPER_CLEARING_S, number>;
  conservation: Conservation;
  blocksMined: number;
  transactions: { total: number; reverted: number };
}

/**
 * Writes ledger.jsonl, clearing-times.csv, ground-truth.json, dso-view.json (and desk-view.json in zk mode) into `outDir`, and
 * returns the summary fields they give, with the clearing rows.
 */
export function writeRunResults(o: {
  outDir: string;
  scenario: Scenario;
  seed: number;
  intervals: number;
  fromBlock: number;
  ledger: Dataset;
  records: readonly HouseholdRecord[];
  dsoDbPath: string;
}): { fields: RunResultFields; rows: ClearingRow[] } {
  writeDataset(path.join(o.outDir, "ledger.jsonl"), o.ledger);
  const { rows, postedOffers } = clearingRows(o.records);
  fs.writeFileSync(path.join(o.outDir, "clearing-times.csv"), clearingCsv(rows));
  writeGroundTruth(path.join(o.outDir, "ground-truth.json"), o.scenario, o.seed, o.records, o.intervals);
  // The DSO's own records, for the attack suite's upper bound (petra attack --dso-view).
  fs.writeFileSync(path.join(o.outDir, "dso-view.json"), `${JSON.stringify(exportDsoView(o.dsoDbPath), null, 2)}\n`);
  // In zk mode the DSO's desk sees money come back: petra attack --desk-view.
  const deskView = exportDeskView(o.dsoDbPath);
  if (deskView) fs.writeFileSync(path.join(o.outDir, "desk-view.json"), `${JSON.stringify(deskView, null, 2)}\n`);
  const clearing = distribution(rows.map((r) => r.clearingS));
  const txs = o.ledger.transactions;
  let accepted = 0;
  let refused = 0;
  for (const r of o.records) if (r.kind === "withdraw") r.ok ? accepted++ : refused++;
  const fields: RunResultFields = {
    scenario: o.scenario.file.name,
    seed: o.seed,
    intervals: o.intervals,
    households: o.scenario.households.length,
    withdrawals: { accepted, refused },
    offers: { posted: postedOffers, cleared: rows.length },
    clearingS: clearing,
    paperClearingS: PAPER_CLEARING_S,
    ratioToPaper: {
      mean: clearing.mean / PAPER_CLEARING_S.mean,
      median: clearing.median / PAPER_CLEARING_S.median,
      p90: clearing.p90 / PAPER_CLEARING_S.p90,
      max: clearing.max / PAPER_CLEARING_S.max,
      variance: clearing.variance / PAPER_CLEARING_S.variance,
    },
    conservation: conservation(marketEvents(o.ledger)),
    blocksMined: o.ledger.header.toBlock - o.fromBlock,
    transactions: { total: txs.length, reverted: txs.filter((t) => t.status !== 1).length },
  };
  return { fields, rows };
}

/** One line for the log: how many offers cleared and how fast, beside the paper's numbers. */
export function clearingLine(f: RunResultFields): string {
  const c = f.clearingS;
  return `cleared ${f.offers.cleared}/${f.offers.posted} offers; clearing time mean ${c.mean.toFixed(2)} s, median ${c.median.toFixed(2)} s, p90 ${c.p90.toFixed(2)} s, max ${c.max.toFixed(2)} s (paper 11.79/11/23/38 s)`;
}

/**
 * The ground truth in the attack suite's format (attacks/ground-truth.ts, README "The ground-truth
 * file"), plus what only the runner knows: feeders, pseudonym order, each withdrawal's forecast.
 */
export function writeGroundTruth(
  file: string,
  scenario: Scenario,
  seed: number,
  records: readonly HouseholdRecord[],
  intervals: number,
): void {
  const window = Array.from({ length: intervals }, (_, i) => scenario.firstInterval + i);
  // Grouped once: a day of 1,000 households has hundreds of thousands of records.
  const byHousehold = new Map<string, HouseholdRecord[]>();
  for (const r of records) getOrInsert(byHousehold, r.household, () => []).push(r);
  const truth = {
    version: 1,
    seed,
    firstInterval: scenario.firstInterval,
    households: scenario.households.map((h) => {
      const mine = byHousehold.get(h.id) ?? [];
      const pseudonyms = mine.flatMap((r) =>
        r.kind === "pseudonym" ? [{ index: r.index, address: r.address, firstInterval: r.interval }] : [],
      );
      const main = new PseudonymWallet({
        runSeed: seed,
        householdId: h.id,
        policy: { kind: "single" },
        rng: createRng(0),
      }).main().address;
      const netW = window.map((k) => h.trueNetW[k] ?? 0);
      // What only the generator knows (generated scenarios): the load and PV behind netW, and who was home.
      const generated = scenario.groundTruth?.[h.id];
      return {
        id: h.id,
        addresses: [main, ...pseudonyms.map((p) => p.address)],
        role: netW.reduce((s, w) => s + w, 0) > 0 ? "producer" : "consumer",
        pvCapacityW: h.pvCapacityW,
        netW,
        feeder: h.feeder,
        column: h.column,
        connectionLimitW: h.connectionLimitW,
        mainAddress: main,
        pseudonyms,
        withdrawals: mine.flatMap((r) =>
          r.kind === "withdraw" ? [{ interval: r.interval, address: r.address, forecastW: r.powerW, ok: r.ok }] : [],
        ),
        ...(generated === undefined
          ? {}
          : {
              persons: generated.persons,
              annualKWh: generated.annualKWh,
              occupancy: window.map((k) => generated.occupancy[k] ?? 0),
              occupancyState: window.map((k) => generated.occupancyState[k] ?? 0),
              loadW: window.map((k) => generated.loadW[k] ?? 0),
              pvW: window.map((k) => generated.pvW[k] ?? 0),
            }),
      };
    }),
  };
  fs.writeFileSync(file, `${JSON.stringify(truth, null, 2)}\n`);
}

/**
 * Loads a scenario (name or path) for a run of its first `households` households and first
 * `intervals` intervals (default: all), checking both against the scenario.
 */
export function scenarioForRun(
  name: string,
  households?: number,
  intervals?: number,
  windowStart?: string,
): { scenario: Scenario; intervals: number } {
  const loaded = loadScenario(name);
  const householdCount = households ?? loaded.households.length;
  check(
    Number.isInteger(householdCount) && householdCount >= 1 && householdCount <= loaded.households.length,
    "households",
    `must be an integer in [1, ${loaded.households.length}] for ${loaded.file.name}, got ${householdCount}`,
  );
  const scenario = startWindowAt(restrictHouseholds(loaded, householdCount), windowStart);
  const count = intervals ?? scenario.intervalCount;
  check(
    Number.isInteger(count) && count >= 1 && count <= scenario.intervalCount,
    "intervals",
    `must be an integer in [1, ${scenario.intervalCount}] for ${scenario.file.name}, got ${count}`,
  );
  return { scenario, intervals: count };
}

/**
 * The scenario's window from `start` ("HH:MM", a later interval boundary inside the window) on:
 * a run of a few intervals can then measure the middle of the day rather than the night.
 */
export function startWindowAt(scenario: Scenario, start: string | undefined): Scenario {
  if (start === undefined) return scenario;
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(start);
  check(m !== null, "windowStart", `must be a time of day HH:MM, got "${start}"`);
  const minutes = Number(m?.[1]) * 60 + Number(m?.[2]);
  const step = scenario.file.intervalMinutes;
  check(minutes % step === 0, "windowStart", `must fall on an interval boundary of ${step} min, got ${start}`);
  const first = minutes / step;
  const skip = first - scenario.firstInterval;
  check(
    skip >= 0 && skip < scenario.intervalCount,
    "windowStart",
    `${start} is outside ${scenario.file.name}'s window (${scenario.intervalCount} intervals from ${scenario.file.window.start})`,
  );
  // Households keep their whole window's profiles (keyed by interval): the runners read from firstInterval on.
  return { ...scenario, firstInterval: first, intervalCount: scenario.intervalCount - skip };
}

/** The scenario with only its first `count` households, and only the feeders they are on. */
export function restrictHouseholds(scenario: Scenario, count: number): Scenario {
  if (count === scenario.households.length) return scenario;
  const households = scenario.households.slice(0, count);
  const feeders = new Set(households.map((h) => h.feeder));
  const feederRatingW = Object.fromEntries(Object.entries(scenario.feederRatingW).filter(([f]) => feeders.has(f)));
  return { ...scenario, households, feederRatingW };
}

/**
 * What the DSO knows about the scenario's grid (agents/household-registry.ts): feeders with their
 * ratings, households with their long-term keys, limits and a starting balance.
 */
export function dsoRegistry(scenario: Scenario, publicKeyHexOf: (householdId: string) => string, intervals: number) {
  const price = scenario.file.market.basePriceMicroPerWInterval;
  return {
    feeders: Object.entries(scenario.feederRatingW).map(([id, ratingW]) => ({ id, ratingW })),
    households: scenario.households.map((h) => ({
      id: h.id,
      publicKeyHex: publicKeyHexOf(h.id),
      feederId: h.feeder,
      pvCapacityW: h.pvCapacityW,
      connectionLimitW: h.connectionLimitW,
      // Enough to buy its whole connection limit at the base price in every interval of the run.
      initialBalance: h.connectionLimitW * price * intervals,
    })),
  };
}
