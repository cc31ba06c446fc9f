import { type Heuristic, type Link, makeLink } from "./heuristic";

/**
 * What the DSO's allowance desk records in zk mode, as `desk-view.json` holds it. A retiring
 * pseudonym deposits its money back and claims notes for it at the desk under its own address; the
 * household later redeems those notes under its own name. The mixer proof hides which note is
 * redeemed, but not how many of which denomination, nor when.
 */
export interface DeskView {
  depositBacks: { pseudonym: string; denomination: string; count: number; atMs: number }[];
  redemptions: { household: string; denomination: string; count: number; atMs: number }[];
}

/** Bounds on the search for assignments (it is exact cover, exponential in the worst case). */
export interface DeskMatchLimits {
  /** Stop after this many consistent assignments (the probabilities are then over these). */
  maxSolutions: number;
  /** Stop after this many search steps. */
  maxSteps: number;
}

export const DEFAULT_DESK_MATCH_LIMITS: DeskMatchLimits = { maxSolutions: 256, maxSteps: 2_000_000 };

export interface DeskMatch {
  /** Consistent assignments found: every household's redeemed notes are exactly its pseudonyms' deposit-backs. */
  solutions: number;
  /** The search ran to its end (false: a limit cut it, and the probabilities are over a sample). */
  exhaustive: boolean;
  steps: number;
  /** Per pseudonym, the household it is assigned to most often and in what share of the assignments. */
  assigned: Map<string, { household: string; probability: number }>;
  links: Link[];
}

/**
 * Links pseudonyms through the DSO's desk: finds every way (up to the limits) to give each household
 * a set of pseudonyms whose deposited-back notes, denomination by denomination, add up to exactly
 * the notes the household redeemed, each pseudonym's deposit-back coming no later than the
 * household's last redemption (a note is redeemed after it is claimed). Pseudonyms may be left
 * over: their notes may not be redeemed yet. Treating the assignments found as equally likely, two
 * pseudonyms are linked with the share of assignments that put them in one household. When the
 * amounts are distinctive and households few, one assignment fits and every link is certain:
 * this is what a household's habit of redeeming all its notes at the end costs it.
 */
export function matchDeskView(view: DeskView, limits: DeskMatchLimits = DEFAULT_DESK_MATCH_LIMITS): DeskMatch {
  const denominations = [...new Set([...view.depositBacks, ...view.redemptions].map((r) => r.denomination))].sort(
    (a, b) => (BigInt(a) < BigInt(b) ? -1 : 1),
  );
  const dim = denominations.length;
  const slot = new Map(denominations.map((d, i) => [d, i]));
  const gather = <K extends string>(
    rows: ({ denomination: string; count: number; atMs: number } & Record<K, string>)[],
    key: K,
  ) => {
    const out = new Map<string, { v: number[]; atMs: number }>();
    for (const r of rows) {
      const id = key === "pseudonym" ? r[key].toLowerCase() : r[key];
      const e = out.get(id) ?? { v: new Array<number>(dim).fill(0), atMs: Number.NEGATIVE_INFINITY };
      (e.v[slot.get(r.denomination) as number] as number) += r.count;
      e.atMs = Math.max(e.atMs, r.atMs);
      out.set(id, e);
    }
    return out;
  };
  const pseudonyms = [...gather(view.depositBacks, "pseudonym").entries()]
    .map(([id, e]) => ({ id, ...e }))
    // Largest deposit-backs first: they exhaust a household's target soonest, so dead ends show early.
    .sort((a, b) => compareVectors(b.v, a.v) || a.id.localeCompare(b.id));
  const households = [...gather(view.redemptions, "household").entries()]
    .map(([id, e]) => ({ id, target: e.v, lastMs: e.atMs }))
    .sort((a, b) => compareVectors(b.target, a.target) || a.id.localeCompare(b.id));

  const owner = new Int32Array(pseudonyms.length).fill(-1);
  const solutions: Int32Array[] = [];
  let steps = 0;
  let cut = false;

  const stop = () => {
    if (solutions.length >= limits.maxSolutions || steps >= limits.maxSteps) cut = true;
    return cut;
  };
  // Household h takes pseudonyms from index `from` on until `need` is zero; then the next household.
  const fill = (h: number, from: number, need: number[]): void => {
    if (stop()) return;
    steps++;
    if (need.every((x) => x === 0)) {
      if (h + 1 === households.length) solutions.push(owner.slice());
      else fill(h + 1, 0, [...(households[h + 1] as { target: number[] }).target]);
      return;
    }
    const household = households[h] as { lastMs: number };
    for (let i = from; i < pseudonyms.length && !cut; i++) {
      const p = pseudonyms[i] as { v: number[]; atMs: number };
      if (owner[i] !== -1 || p.atMs > household.lastMs || p.v.some((x, k) => x > (need[k] as number))) continue;
      owner[i] = h;
      fill(
        h,
        i + 1,
        need.map((x, k) => x - (p.v[k] as number)),
      );
      owner[i] = -1;
    }
  };
  if (households.length > 0) fill(0, 0, [...(households[0] as { target: number[] }).target]);

  const assigned = new Map<string, { household: string; probability: number }>();
  const links: Link[] = [];
  const total = solutions.length;
  if (total === 0) return { solutions: 0, exhaustive: !cut, steps, assigned, links };
  const groups = new Map<number, number[]>();
  for (const [i, p] of pseudonyms.entries()) {
    const counts = new Map<number, number>();
    for (const s of solutions)
      if ((s[i] as number) >= 0) counts.set(s[i] as number, (counts.get(s[i] as number) ?? 0) + 1);
    const best = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
    if (!best) continue;
    assigned.set(p.id, { household: (households[best[0]] as { id: string }).id, probability: best[1] / total });
    const g = groups.get(best[0]) ?? [];
    g.push(i);
    groups.set(best[0], g);
  }
  for (const [h, members] of groups) {
    const [first, ...rest] = members as [number, ...number[]];
    for (const m of rest) {
      const together = solutions.filter((s) => s[first] === s[m] && (s[first] as number) >= 0).length;
      const link = makeLink(
        (pseudonyms[first] as { id: string }).id,
        (pseudonyms[m] as { id: string }).id,
        together / total,
        "desk-view",
        `deposit-backs add up to household ${(households[h] as { id: string }).id}'s redeemed notes in ${together} of ${total}${cut ? "+" : ""} assignments`,
      );
      if (link) links.push(link);
    }
  }
  return { solutions: total, exhaustive: !cut, steps, assigned, links };
}

function compareVectors(a: number[], b: number[]): number {
  for (let k = a.length - 1; k >= 0; k--) if (a[k] !== b[k]) return (a[k] as number) - (b[k] as number);
  return 0;
}

export const deskView: Heuristic = {
  name: "desk-view",
  description:
    "matches the notes pseudonyms deposited back at the DSO's desk to the notes households redeemed (needs --desk-view)",
  link(_ds, knowledge): Link[] {
    return knowledge.deskView ? matchDeskView(knowledge.deskView).links : [];
  },
};
