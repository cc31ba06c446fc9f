import { getOrInsert } from "../common/collections";
import { type Dataset, lower, publicHubs } from "./dataset";
import { type Heuristic, type Link, linkGroup } from "./heuristic";

/**
 * DSO mints that mirror a household's request. The DSO answers one household's withdrawal with one
 * transaction; when that request names several anonymous addresses (or the DSO batches one
 * household's assets and money), the addresses minted to in one transaction belong together. A DSO
 * that batches many households into one transaction dilutes this: the score falls as 1/(addresses-1).
 * Relayers and the DSO are left out of every group: a relayed mixer withdrawal credits the relayer's
 * fee in the same transaction as the recipient's money, and linking through the relayer would chain
 * all its clients together.
 */
export const mintBatch: Heuristic = {
  name: "mint-batch",
  description: "links the addresses that received DSO mints in the same transaction",
  link(ds: Dataset): Link[] {
    const hubs = publicHubs(ds);
    const byTx = new Map<string, Set<string>>();
    for (const e of ds.events) {
      const ev = e.event;
      if (ev.name !== "AssetAdded" && ev.name !== "FinancialAdded") continue;
      if (hubs.has(lower(ev.anonAddress))) continue;
      getOrInsert(byTx, e.txHash, () => new Set<string>()).add(lower(ev.anonAddress));
    }
    const links: Link[] = [];
    for (const [tx, addrs] of byTx) {
      if (addrs.size < 2) continue;
      links.push(...linkGroup([...addrs], 1 / (addrs.size - 1), "mint-batch", `minted together in ${tx}`));
    }
    return links;
  },
};
