import { type MarketEvent, replayMarket, ZERO_ADDRESS } from "../attacks/market-replay";

/**
 * What a run's ledger must satisfy. The ledger itself is the attack suite's dataset
 * (attacks/dataset.ts, read with attacks/dataset-rpc.ts): one format for every ledger in the lab.
 */
export interface Conservation {
  /** Per interval: production and consumption (magnitudes, W) minted, and returned (deposited or still held). */
  energy: {
    interval: number;
    mintedProductionW: string;
    returnedProductionW: string;
    mintedConsumptionW: string;
    returnedConsumptionW: string;
  }[];
  energyConserved: boolean;
  moneyMinted: string;
  moneyDeposited: string;
  moneyStillHeld: string;
  moneyConserved: boolean;
  /** Assets not handed back to the DSO when the run ended. */
  assetsStillHeld: number;
}

/**
 * Checks the market's conservation laws on its events: per interval, the production (and the
 * consumption) minted equals what was deposited plus what is still held; the money minted equals
 * what was deposited plus what is still held, and no address ever holds less than nothing. Trades
 * may only move and split.
 */
export function conservation(events: readonly MarketEvent[]): Conservation {
  const state = replayMarket(events);
  const shapes = new Map<bigint, { powerW: bigint; start: bigint; end: bigint }>();
  const per = new Map<number, { mp: bigint; rp: bigint; mc: bigint; rc: bigint }>();
  const count = (s: { powerW: bigint; start: bigint; end: bigint }, as: "minted" | "returned") => {
    for (let k = Number(s.start); k <= Number(s.end); k++) {
      const v = per.get(k) ?? { mp: 0n, rp: 0n, mc: 0n, rc: 0n };
      const w = s.powerW;
      if (as === "minted") {
        if (w > 0n) v.mp += w;
        else v.mc -= w;
      } else if (w > 0n) v.rp += w;
      else v.rc -= w;
      per.set(k, v);
    }
  };
  let minted = 0n;
  let deposited = 0n;
  for (const ev of events) {
    if (ev.name === "AssetAdded") {
      shapes.set(ev.assetID, ev);
      count(ev, "minted");
    } else if (ev.name === "AssetSplit") shapes.set(ev.assetID, ev);
    else if (ev.name === "AssetDeposited") {
      const s = shapes.get(ev.assetID);
      if (s) count(s, "returned");
    } else if (ev.name === "FinancialAdded") minted += ev.amount;
    else if (ev.name === "FinancialDeposited") deposited += ev.amount;
  }
  let held = 0;
  for (const a of state.assets.values()) {
    if (a.owner === ZERO_ADDRESS) continue;
    held++;
    count(a, "returned");
  }
  // Replayed balances add up by construction; what can break is an address paying out money it
  // never had, which shows as a negative balance.
  let stillHeld = 0n;
  let overdrawn = 0;
  for (const b of state.balances.values()) {
    stillHeld += b;
    if (b < 0n) overdrawn++;
  }
  return {
    energy: [...per.entries()]
      .sort(([a], [b]) => a - b)
      .map(([interval, v]) => ({
        interval,
        mintedProductionW: String(v.mp),
        returnedProductionW: String(v.rp),
        mintedConsumptionW: String(v.mc),
        returnedConsumptionW: String(v.rc),
      })),
    energyConserved: [...per.values()].every((v) => v.mp === v.rp && v.mc === v.rc),
    moneyMinted: String(minted),
    moneyDeposited: String(deposited),
    moneyStillHeld: String(stillHeld),
    moneyConserved: overdrawn === 0 && minted === deposited + stillHeld,
    assetsStillHeld: held,
  };
}
