import { getOrInsert } from "../common/collections";
import { type Dataset, lower } from "./dataset";
import { type Heuristic, type Link, linkGroup } from "./heuristic";

export interface AssetShapeOptions {
  /** A power value shared by more addresses than this is too common to fingerprint. Default 4. */
  maxGroup: number;
}

/**
 * Repeated asset shapes. A household's forecast produces power values (in whole watts) that rarely
 * repeat across other households, so two pseudonyms that receive DSO mints of the same exact power
 * are likely one household on two days or intervals. Partial-fill remainders are not a cross-address
 * signal here: the contract returns them to the same address, so they only keep an address in use.
 */
export function assetShape(opts: Partial<AssetShapeOptions> = {}): Heuristic {
  const maxGroup = opts.maxGroup ?? 4;
  return {
    name: "asset-shape",
    description: "links addresses minted assets of the same rare exact power",
    link(ds: Dataset): Link[] {
      const byPower = new Map<bigint, Set<string>>();
      for (const e of ds.events) {
        if (e.event.name !== "AssetAdded") continue;
        const p = e.event.powerW;
        getOrInsert(byPower, p, () => new Set<string>()).add(lower(e.event.anonAddress));
      }
      const links: Link[] = [];
      for (const [p, addrs] of byPower) {
        if (addrs.size < 2 || addrs.size > maxGroup) continue;
        links.push(...linkGroup([...addrs], 1 / (addrs.size - 1), "asset-shape", `both minted ${p} W`));
      }
      return links;
    },
  };
}
