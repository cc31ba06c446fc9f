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
    for (const f of fundings(ds, contracts)) {
      if (funded.has(f.to)) continue;
      funded.add(f.to);
      if (hubs.has(f.from)) continue;
      const l = makeLink(f.from, f.to, 1, "gas-funding", `first ether of ${f.to} came from ${f.from} in ${f.txHash}`);
      if (l) links.push(l);
    }
    return links;
  },
};

/**
 * Every ether transfer to an address without code, in chain order: plain transfers, and the
 * market's GasFunded events (the DSO funds many pseudonyms in one fundGas call), whose funder is
 * whoever sent that transaction. Within a block, transactions come before events.
 */
function fundings(ds: Dataset, contracts: ReadonlySet<string>): { from: string; to: string; txHash: string }[] {
  const senderOf = new Map<string, string>();
  const out: { from: string; to: string; txHash: string; block: number; order: number }[] = [];
  for (const tx of ds.transactions) {
    senderOf.set(tx.hash, lower(tx.from));
    if (tx.status !== 1 || tx.valueWei <= 0n || !tx.to) continue;
    const to = lower(tx.to);
    if (contracts.has(to)) continue;
    out.push({ from: lower(tx.from), to, txHash: tx.hash, block: tx.blockNumber, order: out.length });
  }
  for (const e of ds.events) {
    if (e.event.name !== "GasFunded" || e.event.amountWei <= 0n) continue;
    const from = senderOf.get(e.txHash);
    if (from === undefined) continue;
    out.push({ from, to: lower(e.event.anonAddress), txHash: e.txHash, block: e.blockNumber, order: out.length });
  }
  return out.sort((a, b) => a.block - b.block || a.order - b.order);
}
