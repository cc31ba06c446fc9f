import type { AssetRequest, FailureReason } from "./messages";

/**
 * The DSO's safety policy, as pure functions over numbers so that each limit is easy to test.
 *
 * Per trading interval:
 * - production a household withdraws <= its PV capacity,
 * - consumption a household withdraws <= its connection limit,
 * - production withdrawn on a feeder <= the feeder's rating, and likewise consumption,
 * and money withdrawn <= the household's account balance.
 *
 * Feeder flows are bounded per direction rather than net: a producer's asset is a right, not an
 * obligation, so the DSO cannot count on it to offset a consumer's on the same feeder. Bounding
 * each direction keeps the feeder safe whichever subset of the withdrawn assets is used.
 * Withdrawals count against the limits for good: an asset handed back later does not free room,
 * because it may have been traded (and its energy promised) before it came back.
 */

export interface IntervalUsage {
  productionW: number;
  /** Magnitude of consumption, >= 0. */
  consumptionW: number;
}

export interface PolicyLimits {
  pvCapacityW: number;
  connectionLimitW: number;
  feederRatingW: number;
}

export interface PolicyInput {
  assets: readonly AssetRequest[];
  financial: number;
  balance: number;
  limits: PolicyLimits;
  /** What this household already withdrew, per interval (missing = nothing). */
  householdUsage: ReadonlyMap<number, IntervalUsage>;
  /** What all households on the feeder already withdrew, per interval. */
  feederUsage: ReadonlyMap<number, IntervalUsage>;
}

export type PolicyRefusalReason = Extract<
  FailureReason,
  "OVER_PV_CAPACITY" | "OVER_CONNECTION_LIMIT" | "OVER_FEEDER_RATING" | "INSUFFICIENT_BALANCE" | "INVALID_REQUEST"
>;

export type PolicyVerdict =
  | { ok: true /** The usage this request adds, per interval. */; added: Map<number, IntervalUsage> }
  | { ok: false; reason: PolicyRefusalReason; message: string };

/** Default cap on intervals one request may touch: a week of 15-minute intervals. */
export const DEFAULT_MAX_REQUEST_INTERVALS = 7 * 96;

/**
 * The usage a set of assets adds, per interval. Refuses (INVALID_REQUEST) a request touching more
 * than `maxIntervals` distinct intervals, which bounds the DSO's work per message.
 */
export function usageOf(
  assets: readonly AssetRequest[],
  maxIntervals = DEFAULT_MAX_REQUEST_INTERVALS,
): { ok: true; added: Map<number, IntervalUsage> } | { ok: false; reason: "INVALID_REQUEST"; message: string } {
  let total = 0;
  for (const a of assets) total += a.end - a.start + 1;
  if (total > maxIntervals) {
    return {
      ok: false,
      reason: "INVALID_REQUEST",
      message: `assets span ${total} asset-intervals, limit ${maxIntervals}`,
    };
  }
  const added = new Map<number, IntervalUsage>();
  for (const a of assets) {
    for (let t = a.start; t <= a.end; t++) {
      const u = added.get(t) ?? { productionW: 0, consumptionW: 0 };
      if (a.powerW > 0) u.productionW += a.powerW;
      else u.consumptionW += -a.powerW;
      added.set(t, u);
    }
  }
  return { ok: true, added };
}

/** Decides one withdrawal. The first limit broken is named, with the interval and the numbers. */
export function checkWithdrawal(input: PolicyInput, maxIntervals = DEFAULT_MAX_REQUEST_INTERVALS): PolicyVerdict {
  if (input.assets.length === 0 && input.financial === 0) {
    return { ok: false, reason: "INVALID_REQUEST", message: "request withdraws nothing: no assets and financial 0" };
  }
  if (input.financial > input.balance) {
    return {
      ok: false,
      reason: "INSUFFICIENT_BALANCE",
      message: `financial ${input.financial} exceeds balance ${input.balance}`,
    };
  }
  const usage = usageOf(input.assets, maxIntervals);
  if (!usage.ok) return usage;
  const intervals = [...usage.added.keys()].sort((a, b) => a - b);
  const { pvCapacityW, connectionLimitW, feederRatingW } = input.limits;
  for (const t of intervals) {
    const add = usage.added.get(t) as IntervalUsage;
    const h = input.householdUsage.get(t) ?? { productionW: 0, consumptionW: 0 };
    if (h.productionW + add.productionW > pvCapacityW) {
      return {
        ok: false,
        reason: "OVER_PV_CAPACITY",
        message: `interval ${t}: production ${h.productionW} W withdrawn + ${add.productionW} W requested > PV capacity ${pvCapacityW} W`,
      };
    }
    if (h.consumptionW + add.consumptionW > connectionLimitW) {
      return {
        ok: false,
        reason: "OVER_CONNECTION_LIMIT",
        message: `interval ${t}: consumption ${h.consumptionW} W withdrawn + ${add.consumptionW} W requested > connection limit ${connectionLimitW} W`,
      };
    }
  }
  for (const t of intervals) {
    const add = usage.added.get(t) as IntervalUsage;
    const f = input.feederUsage.get(t) ?? { productionW: 0, consumptionW: 0 };
    if (f.productionW + add.productionW > feederRatingW || f.consumptionW + add.consumptionW > feederRatingW) {
      const dir = f.productionW + add.productionW > feederRatingW ? "production" : "consumption";
      const have = dir === "production" ? f.productionW : f.consumptionW;
      const want = dir === "production" ? add.productionW : add.consumptionW;
      return {
        ok: false,
        reason: "OVER_FEEDER_RATING",
        message: `interval ${t}: feeder ${dir} ${have} W withdrawn + ${want} W requested > feeder rating ${feederRatingW} W`,
      };
    }
  }
  return { ok: true, added: usage.added };
}
