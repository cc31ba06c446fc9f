/** Mean, spread and a 95% confidence interval of one metric over several runs (seeds). */
export interface MetricSummary {
  n: number;
  mean: number;
  sd: number;
  ci95: [number, number];
}

// Student's t quantiles (two-sided 95%) for n-1 degrees of freedom; beyond 30 the normal 1.96 is close enough.
const T95 = [
  Number.NaN,
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

export function summarise(values: number[]): MetricSummary {
  const n = values.length;
  const mean = values.reduce((s, x) => s + x, 0) / n;
  const sd = n < 2 ? 0 : Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  const t = n < 2 ? Number.NaN : (T95[n - 1] ?? 1.96);
  const half = n < 2 ? Number.NaN : (t * sd) / Math.sqrt(n);
  return { n, mean, sd, ci95: [mean - half, mean + half] };
}

/** Every numeric leaf of `obj`, keyed by its dotted path ("combined.linkage.f1"). */
export function numericLeaves(obj: unknown, prefix = "", out = new Map<string, number>()): Map<string, number> {
  if (typeof obj === "number" && Number.isFinite(obj)) out.set(prefix, obj);
  else if (obj && typeof obj === "object") {
    for (const [k, v] of Object.entries(obj)) numericLeaves(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

/** Summarises each metric path over the runs that report it. */
export function aggregateRuns(perRun: unknown[]): Record<string, MetricSummary> {
  const byPath = new Map<string, number[]>();
  for (const r of perRun) for (const [k, v] of numericLeaves(r)) byPath.set(k, [...(byPath.get(k) ?? []), v]);
  return Object.fromEntries([...byPath].sort(([a], [b]) => a.localeCompare(b)).map(([k, vs]) => [k, summarise(vs)]));
}
