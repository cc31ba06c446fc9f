import { contractAddresses, type Dataset, lower } from "./dataset";
import type { Link } from "./heuristic";

export interface Clustering {
  /** address -> cluster id ("c0", "c1", ...), for every address in the universe. */
  clusterOf: Map<string, string>;
  /** address -> confidence: the strongest link that placed it in its cluster (0 for a singleton). */
  confidence: Map<string, number>;
}

/**
 * The addresses attacks reason about: every owner of a market asset or balance, and every sender or
 * recipient of a transaction, minus the contracts and the DSO.
 */
export function addressUniverse(ds: Dataset): string[] {
  const skip = new Set([lower(ds.header.dso), ...contractAddresses(ds)]);
  const out = new Set<string>();
  const add = (a: string | null | undefined) => {
    if (a && !skip.has(lower(a))) out.add(lower(a));
  };
  for (const e of ds.events) {
    const ev = e.event as Record<string, unknown>;
    for (const k of ["anonAddress", "owner", "depositor", "recipient"]) add(ev[k] as string | undefined);
  }
  for (const t of ds.transactions) {
    add(t.from);
    add(t.to);
  }
  return [...out].sort();
}

/**
 * Merges links into household clusters: connected components over the links whose score reaches
 * `threshold`, strongest links first. With `maxClusterSize`, a link that would make a cluster
 * larger than that is skipped: an attacker who knows roughly how many pseudonyms a household uses
 * stops a few wrong links from chaining many households into one component (union-find alone is
 * fragile that way). Linear in the links after sorting.
 */
export interface CombineOptions {
  /** Links below this score do not merge. Default 0.5. */
  threshold?: number;
  /** No cluster grows beyond this many addresses. Default unlimited. */
  maxClusterSize?: number;
}

export function combineLinks(universe: string[], links: Link[], opts: CombineOptions = {}): Clustering {
  const threshold = opts.threshold ?? 0.5;
  const maxSize = opts.maxClusterSize ?? Number.POSITIVE_INFINITY;
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r) as string;
    let c = x;
    while (c !== r) {
      const next = parent.get(c) as string;
      parent.set(c, r);
      c = next;
    }
    return r;
  };
  const ensure = (x: string) => {
    if (!parent.has(x)) parent.set(x, x);
  };
  for (const a of universe) ensure(a);
  const size = new Map<string, number>();
  const sizeOf = (root: string) => size.get(root) ?? 1;
  const confidence = new Map<string, number>();
  // strongest first, ties in a fixed order, so the result does not depend on heuristic order
  const strong = links
    .filter((l) => l.score >= threshold)
    .sort((x, y) => y.score - x.score || (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
  for (const l of strong) {
    ensure(l.a);
    ensure(l.b);
    const ra = find(l.a);
    const rb = find(l.b);
    if (ra !== rb) {
      const merged = sizeOf(ra) + sizeOf(rb);
      if (merged > maxSize) continue;
      const [keep, drop] = ra < rb ? [ra, rb] : [rb, ra];
      parent.set(drop, keep);
      size.set(keep, merged);
    }
    for (const x of [l.a, l.b]) confidence.set(x, Math.max(confidence.get(x) ?? 0, l.score));
  }
  const ids = new Map<string, string>();
  const clusterOf = new Map<string, string>();
  for (const a of [...parent.keys()].sort()) {
    const root = find(a);
    if (!ids.has(root)) ids.set(root, `c${ids.size}`);
    clusterOf.set(a, ids.get(root) as string);
    if (!confidence.has(a)) confidence.set(a, 0);
  }
  return { clusterOf, confidence };
}
