import { getOrInsert } from "../common/collections";
import { type Dataset, lower } from "./dataset";
import { type Heuristic, type Link, linkGroup } from "./heuristic";

/**
 * DSO mints that mirror a household's request. The DSO answers one household's withdrawal with one
 * transaction; when that request names several anonymous addresses (or the DSO batches one
 * household's assets and money), the addresses minted to in one transaction belong together. A DSO
 * that batches many households into one transaction dilutes this: the score falls as 1/(addresses-1).
 */
export const mintBatch: Heuristic = {
  name: "mint-batch",
  description: "links the addresses that received DSO mints in the same transaction",
  link(ds: Dataset): Link[] {
    const byTx = new Map<string, Set<string>>();
    for (const e of ds.events) {
      const ev = e.event;
      if (ev.name !== "AssetAdded" && ev.name !== "FinancialAdded") continue;
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
