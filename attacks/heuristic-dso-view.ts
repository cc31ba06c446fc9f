import { type Heuristic, type Link, linkGroup } from "./heuristic";

/**
 * The DSO's own view: in plain PETra the DSO mints to the anonymous addresses each household names,
 * so its records link every pseudonym to its household. This is the upper bound the other heuristics
 * are compared with, and what allowance proofs take away from the DSO.
 */
export const dsoView: Heuristic = {
  name: "dso-view",
  description: "links addresses the DSO's own records assign to one household (needs --dso-view)",
  link(_ds, knowledge): Link[] {
    if (!knowledge.dsoView) return [];
    const byHousehold = new Map<string, string[]>();
    for (const [addr, household] of knowledge.dsoView) {
      const list = byHousehold.get(household) ?? [];
      list.push(addr);
      byHousehold.set(household, list);
    }
    const links: Link[] = [];
    for (const [h, addrs] of byHousehold)
      links.push(...linkGroup(addrs, 1, "dso-view", `DSO records name household ${h}`));
    return links;
  },
};
