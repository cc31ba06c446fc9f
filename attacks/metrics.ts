import type { GroundTruth } from "./ground-truth";
import type { InferredProfile } from "./usage-inference";

export interface PairwiseScores {
  /** Addresses scored: those both in the ground truth and seen by the attack. */
  addresses: number;
  precision: number;
  recall: number;
  f1: number;
  /** Adjusted Rand index: 0 is chance, 1 is perfect. */
  ari: number;
}

const choose2 = (n: number) => (n * (n - 1)) / 2;

/**
 * Pairwise precision/recall/F1 (a pair is "linked" when both addresses share a cluster) and the
 * adjusted Rand index, from the contingency table of predicted clusters x true households, so the
 * cost is linear in the addresses rather than quadratic in pairs.
 */
export function pairwiseScores(clusterOf: Map<string, string>, householdOf: Map<string, string>): PairwiseScores {
  const table = new Map<string, number>();
  const rows = new Map<string, number>();
  const cols = new Map<string, number>();
  let n = 0;
  for (const [addr, h] of householdOf) {
    const c = clusterOf.get(addr);
    if (c === undefined) continue;
    n++;
    table.set(`${c}\u0000${h}`, (table.get(`${c}\u0000${h}`) ?? 0) + 1);
    rows.set(c, (rows.get(c) ?? 0) + 1);
    cols.set(h, (cols.get(h) ?? 0) + 1);
  }
  const sum = (m: Map<string, number>) => [...m.values()].reduce((s, x) => s + choose2(x), 0);
  const tp = sum(table);
  const predicted = sum(rows);
  const actual = sum(cols);
  const precision = predicted === 0 ? 1 : tp / predicted;
  const recall = actual === 0 ? 1 : tp / actual;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  const expected = choose2(n) === 0 ? 0 : (predicted * actual) / choose2(n);
  const maxIndex = (predicted + actual) / 2;
  const ari = maxIndex === expected ? (tp === expected ? 1 : 0) : (tp - expected) / (maxIndex - expected);
  return { addresses: n, precision, recall, f1, ari };
}

export interface ReidentificationScores {
  /** Pseudonyms ranked: anonymous addresses with inferred data whose household has a true profile. */
  pseudonyms: number;
  candidates: number;
  top1: number;
  top5: number;
  /** What guessing scores: 1/candidates and min(5, candidates)/candidates. */
  chanceTop1: number;
  chanceTop5: number;
  /** Mean effective anonymity-set size 2^H, and H / log2(candidates), over pseudonyms. */
  meanAnonymitySet: number;
  meanNormalisedEntropy: number;
}

/**
 * Re-identification as Cretu et al. (2024) measure it: the attacker holds the candidate households'
 * meter data (the ground truth's netW, as auxiliary knowledge) and ranks, for each pseudonym, the
 * households by how well its cluster's inferred profile matches theirs (mean absolute error over the
 * cluster's intervals). The ranking also gives a probability per household, p ~ exp(-MAE / tau) with
 * tau the mean MAE, whose entropy is the pseudonym's anonymity.
 */
export function reidentification(
  profiles: InferredProfile[],
  clusterOf: Map<string, string>,
  truth: GroundTruth,
): ReidentificationScores | undefined {
  const households = truth.households.filter((h) => h.netW && h.netW.length > 0);
  if (households.length < 2) return undefined;
  const n = households.length;
  const truthRows = households.map((h) => Float64Array.from(h.netW as number[]));
  const profileOf = new Map(profiles.map((p) => [p.cluster, p]));
  // Per cluster, once: the MAE against every household, and the entropy of the induced distribution.
  // This is the hot loop (clusters x households), so it works on plain arrays, not Maps.
  const perCluster = new Map<string, { errors: Float64Array; entropyBits: number }>();
  const clusterStats = (p: InferredProfile) => {
    let st = perCluster.get(p.cluster);
    if (st) return st;
    const ts = [...p.netW.keys()].map((t) => t - truth.firstInterval);
    const vs = [...p.netW.values()];
    const errors = new Float64Array(n);
    let finiteSum = 0;
    let finiteN = 0;
    for (let i = 0; i < n; i++) {
      const row = truthRows[i] as Float64Array;
      let s = 0;
      let k = 0;
      for (let j = 0; j < ts.length; j++) {
        const t = ts[j] as number;
        if (t < 0 || t >= row.length) continue;
        const tv = row[t] as number;
        s += Math.abs((vs[j] as number) - tv);
        k++;
      }
      errors[i] = k === 0 ? Number.POSITIVE_INFINITY : s / k;
      if (k > 0) {
        finiteSum += s / k;
        finiteN++;
      }
    }
    // tau sets how sharply a smaller error means a likelier household: the mean error, scale-free
    const tau = Math.max(1e-9, finiteN === 0 ? 1 : finiteSum / finiteN);
    const w = new Float64Array(n);
    let z = 0;
    for (let i = 0; i < n; i++) {
      const e = errors[i] as number;
      w[i] = Number.isFinite(e) ? Math.exp(-e / tau) : 0;
      z += w[i] as number;
    }
    let entropyBits = 0;
    for (let i = 0; i < n; i++) {
      const q = (w[i] as number) / z;
      if (q > 0) entropyBits -= q * Math.log2(q);
    }
    st = { errors, entropyBits };
    perCluster.set(p.cluster, st);
    return st;
  };
  let pseudonyms = 0;
  let top1 = 0;
  let top5 = 0;
  let anon = 0;
  let entropy = 0;
  households.forEach((h, hi) => {
    for (const addr of h.addresses) {
      const c = clusterOf.get(addr.toLowerCase());
      const p = c === undefined ? undefined : profileOf.get(c);
      if (!p || p.netW.size === 0) continue;
      const { errors, entropyBits } = clusterStats(p);
      const mine = errors[hi] as number;
      let atMost = 0; // households scoring as well as or better than the true one; ties count against the attacker
      for (let i = 0; i < n; i++) if ((errors[i] as number) <= mine) atMost++;
      pseudonyms++;
      if (atMost <= 1) top1++;
      if (atMost <= 5) top5++;
      anon += 2 ** entropyBits;
      entropy += entropyBits / Math.log2(n);
    }
  });
  if (pseudonyms === 0) return undefined;
  return {
    pseudonyms,
    candidates: n,
    top1: top1 / pseudonyms,
    top5: top5 / pseudonyms,
    chanceTop1: 1 / n,
    chanceTop5: Math.min(5, n) / n,
    meanAnonymitySet: anon / pseudonyms,
    meanNormalisedEntropy: entropy / pseudonyms,
  };
}

export interface UsageScores {
  /** Clusters scored (each against the household that holds most of its addresses). */
  clusters: number;
  occupancyAccuracy: number | null;
  occupancyF1: number | null;
  /** Share of the true household-intervals for which some cluster had an occupancy inference. */
  occupancyCoverage: number;
  loadMaeW: number | null;
  loadCorrelation: number | null;
  roleAccuracy: number | null;
  pvMaeW: number | null;
}

/** Scores inferred profiles against the truth; null where the truth lacks the field. */
export function usageScores(
  profiles: InferredProfile[],
  clusterOf: Map<string, string>,
  truth: GroundTruth,
): UsageScores {
  const byId = new Map(truth.households.map((h) => [h.id, h]));
  const members = new Map<string, Map<string, number>>();
  for (const h of truth.households) {
    for (const a of h.addresses) {
      const c = clusterOf.get(a.toLowerCase());
      if (c === undefined) continue;
      const m = members.get(c) ?? new Map<string, number>();
      m.set(h.id, (m.get(h.id) ?? 0) + 1);
      members.set(c, m);
    }
  }
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let correct = 0;
  let judged = 0;
  let absErr = 0;
  let errN = 0;
  const xs: number[] = [];
  const ys: number[] = [];
  let roleRight = 0;
  let roleN = 0;
  let pvErr = 0;
  let pvN = 0;
  let clusters = 0;
  const covered = new Set<string>();
  for (const p of profiles) {
    const m = members.get(p.cluster);
    if (!m) continue;
    const hid = [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] as string;
    const h = byId.get(hid);
    if (!h) continue;
    clusters++;
    if (h.role) {
      roleN++;
      if (h.role === p.role) roleRight++;
    }
    if (h.pvCapacityW !== undefined && h.role === "producer") {
      pvN++;
      pvErr += Math.abs(h.pvCapacityW - p.pvEstimateW);
    }
    for (const [t, v] of p.netW) {
      const i = t - truth.firstInterval;
      const truthW = h.netW?.[i];
      if (truthW !== undefined) {
        absErr += Math.abs(v - truthW);
        errN++;
        xs.push(v);
        ys.push(truthW);
      }
    }
    for (const [t, home] of p.occupied) {
      const actual = h.occupancy?.[t - truth.firstInterval];
      if (actual === undefined) continue;
      covered.add(`${h.id}:${t}`);
      judged++;
      if (home === (actual === 1)) correct++;
      if (home && actual === 1) tp++;
      else if (home) fp++;
      else if (actual === 1) fn++;
    }
  }
  const totalIntervals = truth.households.reduce((s, h) => s + (h.occupancy?.length ?? 0), 0);
  return {
    clusters,
    occupancyAccuracy: judged === 0 ? null : correct / judged,
    occupancyF1: judged === 0 ? null : tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn),
    occupancyCoverage: totalIntervals === 0 ? 0 : covered.size / totalIntervals,
    loadMaeW: errN === 0 ? null : absErr / errN,
    loadCorrelation: pearson(xs, ys),
    roleAccuracy: roleN === 0 ? null : roleRight / roleN,
    pvMaeW: pvN === 0 ? null : pvErr / pvN,
  };
}

export function pearson(xs: number[], ys: number[]): number | null {
  const n = xs.length;
  if (n < 3) return null;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}
