import { type Dataset, lower } from "./dataset";
import { type Heuristic, type Link, makeLink } from "./heuristic";

export interface MixerMatchingOptions {
  /** A withdrawal is matched only to deposits at most this many seconds before it. Default 3,600. */
  windowS: number;
}

interface Deposit {
  depositor: string;
  denomination: bigint;
  timestamp: number;
  matched: boolean;
}

/**
 * Deposit <-> withdrawal matching, after Tutela (Wang et al., WWW'23) and the Tornado Cash folklore:
 * - address reuse: a recipient that also deposited is the same person as that depositor;
 * - timing: a withdrawal is matched first-in-first-out to the oldest unmatched deposit of its
 *   denomination inside the time window, with confidence 1/(candidates in the window);
 * - multi-denomination portfolios: a depositor whose multiset of denominations equals, uniquely, the
 *   multiset a recipient withdraws (two notes or more) is linked to it.
 * Fixed denominations make amounts useless on their own, which is why the mixer has them.
 */
export function mixerMatching(opts: Partial<MixerMatchingOptions> = {}): Heuristic {
  const windowS = opts.windowS ?? 3_600;
  return {
    name: "mixer-matching",
    description: "links mixer deposits to withdrawals by address reuse, timing and denomination portfolios",
    link(ds: Dataset): Link[] {
      const links: Link[] = [];
      const push = (l: Link | undefined) => l && links.push(l);
      const hubs = new Set([lower(ds.header.dso)]);
      const deposits: Deposit[] = [];
      const portfolioIn = new Map<string, bigint[]>();
      const portfolioOut = new Map<string, bigint[]>();
      for (const e of ds.events) {
        const ev = e.event;
        if (ev.name === "MixerDeposit") {
          const d = lower(ev.depositor);
          deposits.push({ depositor: d, denomination: ev.denomination, timestamp: e.timestamp, matched: false });
          portfolioIn.set(d, [...(portfolioIn.get(d) ?? []), ev.denomination]);
        } else if (ev.name === "MixerWithdrawal") {
          const r = lower(ev.recipient);
          portfolioOut.set(r, [...(portfolioOut.get(r) ?? []), ev.denomination]);
          const candidates = deposits.filter(
            (d) => !d.matched && d.denomination === ev.denomination && e.timestamp - d.timestamp <= windowS,
          );
          const reused = candidates.find((d) => d.depositor === r);
          const chosen = reused ?? candidates[0];
          if (!chosen) continue;
          chosen.matched = true;
          // a deposit the DSO made on someone's behalf still takes its FIFO place, but says nothing
          // about whose it was (this lab's Mixer only takes deposits from the DSO)
          if (hubs.has(chosen.depositor)) continue;
          push(
            makeLink(
              chosen.depositor,
              r,
              reused ? 1 : 1 / candidates.length,
              "mixer-matching",
              reused ? "recipient deposited before" : `FIFO among ${candidates.length} deposits of ${ev.denomination}`,
            ),
          );
        }
      }
      const key = (xs: bigint[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(",");
      const ins = new Map<string, string[]>();
      for (const [d, xs] of portfolioIn)
        if (xs.length >= 2 && !hubs.has(d)) ins.set(key(xs), [...(ins.get(key(xs)) ?? []), d]);
      const outs = new Map<string, string[]>();
      for (const [r, xs] of portfolioOut) if (xs.length >= 2) outs.set(key(xs), [...(outs.get(key(xs)) ?? []), r]);
      for (const [k, depositorsOf] of ins) {
        const rs = outs.get(k);
        if (depositorsOf.length === 1 && rs?.length === 1)
          push(makeLink(depositorsOf[0]!, rs[0]!, 1, "mixer-matching", `same portfolio {${k}}`));
      }
      return links;
    },
  };
}
