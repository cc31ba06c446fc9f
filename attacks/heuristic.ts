import type { Dataset } from "./dataset";
import type { DeskView } from "./heuristic-desk-view";

/** Two addresses an attack believes belong to one household, with its confidence in [0, 1]. */
export interface Link {
  a: string;
  b: string;
  score: number;
  heuristic: HeuristicName;
  /** Why, in a few words, for a researcher reading links.csv. */
  reason: string;
}

export type HeuristicName =
  | "gas-funding"
  | "mint-batch"
  | "asset-shape"
  | "behaviour"
  | "network-observer"
  | "mixer-matching"
  | "dso-view"
  | "desk-view";

/** Extra knowledge an attacker may hold beyond the public ledger (each is opt-in). */
export interface AttackerKnowledge {
  /** The DSO's own records: anonymous address -> household id (the upper bound: in plain PETra the DSO knows every link). */
  dsoView?: Map<string, string>;
  /** The DSO's allowance desk records in zk mode: deposit-backs per pseudonym, redemptions per household. */
  deskView?: DeskView;
}

/**
 * One linkage heuristic. It sees only the dataset (and the knowledge explicitly handed to it), and
 * emits scored address-address links; the combiner merges links from all heuristics into clusters.
 */
export interface Heuristic {
  readonly name: HeuristicName;
  readonly description: string;
  link(ds: Dataset, knowledge: AttackerKnowledge): Link[];
}

/** Canonical (sorted, lower-case) form of a link's endpoints; undefined for a self-link. */
export function makeLink(
  a: string,
  b: string,
  score: number,
  heuristic: HeuristicName,
  reason: string,
): Link | undefined {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y) return undefined;
  return x < y ? { a: x, b: y, score, heuristic, reason } : { a: y, b: x, score, heuristic, reason };
}

/** Links every member of a group to its first member: enough for clustering, linear in the group size. */
export function linkGroup(members: string[], score: number, heuristic: HeuristicName, reason: string): Link[] {
  const out: Link[] = [];
  const [first, ...rest] = [...new Set(members.map((m) => m.toLowerCase()))];
  if (!first) return out;
  for (const m of rest) {
    const l = makeLink(first, m, score, heuristic, reason);
    if (l) out.push(l);
  }
  return out;
}
