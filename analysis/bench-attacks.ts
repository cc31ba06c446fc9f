import { performance } from "node:perf_hooks";
import { runAttack } from "../attacks/attack-runner";
import type { GroundTruth } from "../attacks/ground-truth";
import { addr, DSO, LedgerBuilder } from "../attacks/ledger-builder";
import { createRng } from "../common/rng";

export interface AttackBenchOptions {
  households: number;
  intervals: number;
  seed: number;
}

export interface AttackBenchResult extends AttackBenchOptions {
  events: number;
  transactions: number;
  addresses: number;
  /** Wall time of runAttack with every heuristic and scoring, median of the repetitions. */
  medianSeconds: number;
  repetitions: number;
  eventsPerSecond: number;
}

/**
 * Attack throughput on a synthetic day: every household withdraws its forecast each interval to a
 * fresh DSO-funded pseudonym, posts it, and deposits it back (3 events and 4 transactions per
 * household-interval). The ledger's content is synthetic; what is measured is the attack's cost.
 */
export function benchAttacks(opts: AttackBenchOptions, repetitions = 3): AttackBenchResult {
  const rng = createRng(opts.seed);
  const b = new LedgerBuilder(1);
  const truth: GroundTruth = { version: 1, firstInterval: 0, households: [] };
  const netW: number[][] = [];
  for (let h = 0; h < opts.households; h++) {
    const scale = 300 + 3000 * rng.next();
    netW.push(Array.from({ length: opts.intervals }, () => -Math.round(scale * (0.3 + rng.next()))));
    truth.households.push({ id: `h${h}`, addresses: [], netW: netW[h] });
  }
  let offerID = 0n;
  for (let t = 0; t < opts.intervals; t++) {
    for (const h of rng.shuffle(Array.from({ length: opts.households }, (_, i) => i))) {
      const anon = addr(`h${h}-t${t}`);
      truth.households[h]?.addresses.push(anon);
      b.fund(DSO, anon)
        .mint([{ to: anon, powerW: netW[h]?.[t] as number, start: t }])
        .post(anon, b.lastAssetID, 2n, offerID++)
        .deposit(anon, b.lastAssetID);
    }
  }
  const ds = b.build();
  const times: number[] = [];
  let addresses = 0;
  for (let i = 0; i < repetitions; i++) {
    const t0 = performance.now();
    addresses = runAttack(ds, { truth }).addresses;
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)] as number;
  return {
    ...opts,
    events: ds.events.length,
    transactions: ds.transactions.length,
    addresses,
    medianSeconds: median,
    repetitions,
    eventsPerSecond: ds.events.length / median,
  };
}
