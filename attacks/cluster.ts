import { type Dataset, lower } from "./dataset";
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
  const skip = new Set([
    lower(ds.header.dso),
    ...Object.values(ds.header.contracts)
      .filter(Boolean)
      .map((a) => lower(a as string)),
  ]);
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
 * `threshold`. Union-find is linear in the links and has no parameters to tune beyond the threshold;
 * a community-detection method would resist a single wrong hub link better, at the cost of more
 * knobs (a possible refinement when Tor-mode observer links are combined with others).
 */
export function combineLinks(universe: string[], links: Link[], threshold = 0.5): Clustering {
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
  const confidence = new Map<string, number>();
  for (const l of links) {
    if (l.score < threshold) continue;
    ensure(l.a);
    ensure(l.b);
    const ra = find(l.a);
    const rb = find(l.b);
    if (ra !== rb) parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
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
