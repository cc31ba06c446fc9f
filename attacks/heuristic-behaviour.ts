import { getOrInsert } from "../common/collections";
import { type Dataset, lower } from "./dataset";
import { type Heuristic, type Link, makeLink } from "./heuristic";

export interface BehaviourOptions {
  /** Links pairs whose feature distance is below this (features are scaled to comparable units). Default 0.05. */
  maxDistance: number;
  /** Neighbours compared on each side after sorting by the main feature; keeps the cost linear. Default 8. */
  window: number;
}

interface Features {
  address: string;
  /** +1 producer, -1 consumer, by the sign of the power minted to it. */
  role: number;
  /** log10 of the mean |power| minted (W). */
  logPowerW: number;
  /** Mean offer price, as log10(1 + price). */
  logPrice: number;
  /** Seconds after the first mint of its interval at which it sends, mean (reaction-time fingerprint). */
  reactionS: number;
  /** Gas price its transactions pay (wallet fingerprint), log10 wei. */
  logGasPrice: number;
}

/**
 * Behavioural fingerprints: an address is described by what it trades (role, size, price) and how it
 * behaves (reaction time, gas price); addresses that look alike are linked, more strongly the closer
 * they are. Households differ in size and habits; fresh addresses per interval do not change those.
 */
export function behaviour(opts: Partial<BehaviourOptions> = {}): Heuristic {
  const maxDistance = opts.maxDistance ?? 0.05;
  const window = opts.window ?? 8;
  return {
    name: "behaviour",
    description: "links addresses with alike role, size, price, reaction time and gas price",
    link(ds: Dataset): Link[] {
      const features = extractFeatures(ds);
      features.sort((x, y) => x.role - y.role || x.logPowerW - y.logPowerW);
      const links: Link[] = [];
      for (let i = 0; i < features.length; i++) {
        const f = features[i] as Features;
        for (let j = i + 1; j <= i + window && j < features.length; j++) {
          const g = features[j] as Features;
          if (g.role !== f.role) break;
          const d = distance(f, g);
          if (d >= maxDistance) continue;
          const l = makeLink(
            f.address,
            g.address,
            1 - d / maxDistance,
            "behaviour",
            `feature distance ${d.toFixed(4)}`,
          );
          if (l) links.push(l);
        }
      }
      return links;
    },
  };
}

function distance(f: Features, g: Features): number {
  // reaction time in minutes so that a few seconds of jitter weigh little
  return Math.hypot(
    f.logPowerW - g.logPowerW,
    f.logPrice - g.logPrice,
    (f.reactionS - g.reactionS) / 60,
    f.logGasPrice - g.logGasPrice,
  );
}

export function extractFeatures(ds: Dataset): Features[] {
  const acc = new Map<string, { power: number[]; sign: number; prices: number[]; sends: number[]; gas: number[] }>();
  const get = (a: string) =>
    getOrInsert(acc, a, () => ({
      power: [] as number[],
      sign: 0,
      prices: [] as number[],
      sends: [] as number[],
      gas: [] as number[],
    }));
  const owner = new Map<bigint, string>();
  const firstMintTime = new Map<bigint, number>(); // interval start index -> first mint timestamp
  for (const e of ds.events) {
    const ev = e.event;
    if (ev.name === "AssetAdded" || ev.name === "AssetSplit") {
      const who = lower(ev.name === "AssetAdded" ? ev.anonAddress : ev.owner);
      owner.set(ev.assetID, who);
      if (ev.name === "AssetAdded") {
        const f = get(who);
        f.power.push(Math.abs(Number(ev.powerW)));
        f.sign += ev.powerW > 0n ? 1 : -1;
        if (!firstMintTime.has(ev.start)) firstMintTime.set(ev.start, e.timestamp);
      }
    } else if (ev.name === "OfferPosted") {
      const who = owner.get(ev.assetID);
      if (who) get(who).prices.push(Number(ev.priceMicroPerWInterval));
    }
  }
  const mintTimes = [...firstMintTime.values()].sort((a, b) => a - b);
  for (const tx of ds.transactions) {
    const f = acc.get(lower(tx.from));
    if (!f) continue;
    f.gas.push(Number(tx.gasPriceWei));
    // reaction: seconds since the latest interval's first mint before this transaction
    let last = mintTimes[0] ?? tx.timestamp;
    for (const t of mintTimes) if (t <= tx.timestamp) last = t;
    f.sends.push(tx.timestamp - last);
  }
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length);
  return [...acc].map(([address, f]) => ({
    address,
    role: f.sign >= 0 ? 1 : -1,
    logPowerW: Math.log10(1 + mean(f.power)),
    logPrice: Math.log10(1 + mean(f.prices)),
    reactionS: mean(f.sends),
    logGasPrice: Math.log10(1 + mean(f.gas)),
  }));
}
