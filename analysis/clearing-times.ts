import type { ProsumerRecord } from "../agents/prosumer";

/** The PETra paper's clearing times (postOffer sent -> acceptOffer mined), seconds; variance in s^2. */
export const PAPER_CLEARING_S = { mean: 11.79, median: 11, p90: 23, max: 38, variance: 46.74 } as const;

export interface ClearingRow {
  offerID: string;
  poster: string;
  accepter: string;
  postSentAtMs: number;
  acceptMinedAtMs: number;
  clearingS: number;
}

export type HouseholdRecord = ProsumerRecord & { household: string };

/** Joins every cleared offer's postOffer send with the acceptOffer that cleared it. */
export function clearingRows(records: readonly HouseholdRecord[]): { rows: ClearingRow[]; postedOffers: number } {
  const posts = new Map<string, { household: string; sentAtMs: number }>();
  for (const r of records) {
    if (r.kind === "tx" && r.action === "post" && r.ok && r.offerID !== undefined)
      posts.set(r.offerID, { household: r.household, sentAtMs: r.sentAtMs });
  }
  const rows: ClearingRow[] = [];
  for (const r of records) {
    if (r.kind !== "tx" || r.action !== "accept" || !r.ok || r.offerID === undefined) continue;
    const post = posts.get(r.offerID);
    if (!post) continue;
    rows.push({
      offerID: r.offerID,
      poster: post.household,
      accepter: r.household,
      postSentAtMs: post.sentAtMs,
      acceptMinedAtMs: r.doneAtMs,
      clearingS: (r.doneAtMs - post.sentAtMs) / 1000,
    });
  }
  rows.sort((a, b) => Number(BigInt(a.offerID) - BigInt(b.offerID)));
  return { rows, postedOffers: posts.size };
}

export function clearingCsv(rows: readonly ClearingRow[]): string {
  const lines = ["offer_id,poster,accepter,post_sent_at_ms,accept_mined_at_ms,clearing_s"];
  for (const r of rows)
    lines.push(
      `${r.offerID},${r.poster},${r.accepter},${r.postSentAtMs},${r.acceptMinedAtMs},${r.clearingS.toFixed(3)}`,
    );
  return `${lines.join("\n")}\n`;
}

export interface Distribution {
  count: number;
  mean: number;
  median: number;
  p90: number;
  max: number;
  /** Sample variance (n - 1). */
  variance: number;
}

/** Mean, median, 90th percentile (nearest rank), max and sample variance; NaN for an empty sample. */
export function distribution(values: readonly number[]): Distribution {
  const n = values.length;
  if (n === 0)
    return { count: 0, mean: Number.NaN, median: Number.NaN, p90: Number.NaN, max: Number.NaN, variance: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / n;
  const median =
    n % 2 === 1 ? (sorted[(n - 1) / 2] as number) : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
  const p90 = sorted[Math.max(0, Math.ceil(0.9 * n) - 1)] as number;
  const variance = n > 1 ? sorted.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { count: n, mean, median, p90, max: sorted[n - 1] as number, variance };
}
