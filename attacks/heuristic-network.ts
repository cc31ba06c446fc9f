import { getOrInsert } from "../common/collections";
import { type Dataset, lower } from "./dataset";
import { type Heuristic, type Link, linkGroup } from "./heuristic";

/**
 * A network observer at the RPC node: transactions that arrive from the same source address belong
 * together. Without Tor each household's agent has its own address, so this links all of its
 * pseudonyms; through Tor the sources are a few exits shared by everyone, and the links it emits
 * merge unrelated households (precision falls to chance, which is what the defence is for).
 */
export const networkObserver: Heuristic = {
  name: "network-observer",
  description: "links addresses whose transactions arrived from the same network source",
  link(ds: Dataset): Link[] {
    if (ds.observer.length === 0) return [];
    const senderOf = new Map(ds.transactions.map((t) => [t.hash.toLowerCase(), lower(t.from)]));
    const bySource = new Map<string, Set<string>>();
    for (const r of ds.observer) {
      const who = r.txFrom ? lower(r.txFrom) : r.txHash ? senderOf.get(r.txHash.toLowerCase()) : undefined;
      if (!who) continue;
      getOrInsert(bySource, r.source, () => new Set<string>()).add(who);
    }
    const links: Link[] = [];
    for (const [source, addrs] of bySource)
      links.push(...linkGroup([...addrs], 1, "network-observer", `sent from ${source}`));
    return links;
  },
};
