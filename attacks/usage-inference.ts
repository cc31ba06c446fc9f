import { getOrInsert } from "../common/collections";
import { type Dataset, lower } from "./dataset";

/** What an attacker infers about one cluster (one presumed household), per trading interval. */
export interface InferredProfile {
  cluster: string;
  /** interval index -> net production in W (negative = consumption), from the energy the DSO minted to it. */
  netW: Map<number, number>;
  /** interval index -> someone at home? (only intervals with consumption data) */
  occupied: Map<number, boolean>;
  role: "producer" | "consumer";
  /** Largest net production seen: a lower bound of the PV size, W (0 for consumers). */
  pvEstimateW: number;
}

export interface OccupancyRule {
  /** Home when consumption exceeds factor x the cluster's base load (its 20th percentile) plus marginW. Defaults 1.5 and 50. */
  baseFactor: number;
  marginW: number;
}

/**
 * Reconstructs each cluster's net load per interval and infers occupancy, role and PV size.
 *
 * In PETra a household withdraws from the DSO exactly its forecast net position for each interval,
 * so the AssetAdded events to a cluster's addresses, summed per interval, are its forecast load
 * profile: trades only move that energy between households, they do not change what each one needs.
 * Occupancy follows the non-intrusive load monitoring habit (Kleiminger et al.): an interval whose
 * consumption clearly exceeds the household's own base load (fridge, standby) means someone is home.
 */
export function inferUsage(
  ds: Dataset,
  clusterOf: Map<string, string>,
  rule: Partial<OccupancyRule> = {},
): InferredProfile[] {
  const baseFactor = rule.baseFactor ?? 1.5;
  const marginW = rule.marginW ?? 50;
  const byCluster = new Map<string, Map<number, number>>();
  for (const e of ds.events) {
    const ev = e.event;
    if (ev.name !== "AssetAdded") continue;
    const c = clusterOf.get(lower(ev.anonAddress));
    if (!c) continue;
    const m = getOrInsert(byCluster, c, () => new Map<number, number>());
    for (let t = Number(ev.start); t <= Number(ev.end); t++) m.set(t, (m.get(t) ?? 0) + Number(ev.powerW));
  }
  const out: InferredProfile[] = [];
  for (const [cluster, netW] of [...byCluster].sort(([a], [b]) => a.localeCompare(b))) {
    const values = [...netW.values()];
    const total = values.reduce((s, x) => s + x, 0);
    const consumption = values
      .filter((v) => v < 0)
      .map((v) => -v)
      .sort((a, b) => a - b);
    const base = consumption.length > 0 ? (consumption[Math.floor(0.2 * (consumption.length - 1))] as number) : 0;
    const occupied = new Map<number, boolean>();
    for (const [t, v] of netW) if (v < 0) occupied.set(t, -v > baseFactor * base + marginW);
    out.push({
      cluster,
      netW,
      occupied,
      role: total > 0 ? "producer" : "consumer",
      pvEstimateW: Math.max(0, ...values),
    });
  }
  return out;
}
