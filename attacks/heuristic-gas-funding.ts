import { contractAddresses, type Dataset, lower, publicHubs } from "./dataset";
import { type Heuristic, type Link, makeLink } from "./heuristic";

/**
 * Who paid for a fresh address's gas. An anonymous address needs ether before it can send its first
 * transaction; whoever sent that first ether is linked to it (transitively through the clustering).
 * Funders that fund for everyone carry no household information and are skipped: the DSO (in plain
 * PETra it funds every pseudonym) and mixer relayers.
 */
export const gasFunding: Heuristic = {
  name: "gas-funding",
  description: "links a fresh address to whoever sent it its first ether",
  link(ds: Dataset): Link[] {
    const contracts = contractAddresses(ds);
    const hubs = publicHubs(ds);
    const funded = new Set<string>();
    const links: Link[] = [];
    for (const tx of ds.transactions) {
      if (tx.status !== 1 || tx.valueWei <= 0n || !tx.to) continue;
      const to = lower(tx.to);
      if (contracts.has(to) || funded.has(to)) continue;
      funded.add(to);
      if (hubs.has(lower(tx.from))) continue;
      const l = makeLink(
        tx.from,
        to,
        1,
        "gas-funding",
        `first ether of ${to} came from ${lower(tx.from)} in ${tx.hash}`,
      );
      if (l) links.push(l);
    }
    return links;
  },
};
