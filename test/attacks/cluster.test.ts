import { expect } from "chai";
import { combineLinks } from "../../attacks/cluster";
import { type Link, makeLink } from "../../attacks/heuristic";

const link = (a: string, b: string, score: number) => makeLink(a, b, score, "behaviour", "test") as Link;
const groups = (clusterOf: Map<string, string>) => {
  const by = new Map<string, string[]>();
  for (const [a, c] of clusterOf) by.set(c, [...(by.get(c) ?? []), a]);
  return [...by.values()].map((g) => g.sort().join("")).sort();
};

describe("cluster # combineLinks", () => {
  // two households {a,b,c} and {d,e,f}, strongly linked inside, and one weaker wrong link c-d
  const links = [link("a", "b", 1), link("b", "c", 1), link("d", "e", 1), link("e", "f", 1), link("c", "d", 0.6)];
  const universe = ["a", "b", "c", "d", "e", "f", "g"];

  it("merges the connected components of links at or above the threshold", () => {
    expect(groups(combineLinks(universe, links).clusterOf)).to.deep.equal(["abcdef", "g"]);
    expect(groups(combineLinks(universe, links, { threshold: 0.7 }).clusterOf)).to.deep.equal(["abc", "def", "g"]);
  });

  it("with a size cap, merges the strongest links first and skips a link that would exceed the cap", () => {
    const c = combineLinks(universe, [...links].reverse(), { maxClusterSize: 3 });
    expect(groups(c.clusterOf)).to.deep.equal(["abc", "def", "g"]);
    expect(c.confidence.get("g")).to.equal(0);
    expect(c.confidence.get("a")).to.equal(1);
  });
});
