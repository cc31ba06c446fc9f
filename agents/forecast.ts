import { check } from "../common/errors";
import type { Rng } from "../common/rng";

export interface ForecastOptions {
  /** True net production per market interval, in watts (positive production, negative consumption). */
  trueNetW: ReadonlyMap<number, number>;
  /**
   * Standard deviation of the forecast error, relative to the true value (0.1 = 10 %). The error
   * is multiplicative so that an interval with nothing to trade stays at zero. Default 0.
   */
  errorRelativeSd?: number;
  /** Production never forecast above this, in watts (the household's PV capacity). Default: no cap. */
  maxProductionW?: number;
  /** Consumption never forecast above this, in watts (the connection limit). Default: no cap. */
  maxConsumptionW?: number;
  /** Draws the errors; one independent draw per interval, in interval order, so the same seed gives the same forecast. */
  rng: Rng;
}

/**
 * The household's forecast of its net production per interval: its true profile with a seeded
 * error, rounded to whole watts (the market trades integer watts). Computed once for all
 * intervals, so the forecast of an interval does not depend on when or how often it is asked.
 */
export class Forecast {
  readonly #forecastW = new Map<number, number>();

  constructor(opts: ForecastOptions) {
    const sd = opts.errorRelativeSd ?? 0;
    check(Number.isFinite(sd) && sd >= 0, "errorRelativeSd", `must be a non-negative number, got ${sd}`);
    check(
      opts.maxProductionW === undefined || opts.maxProductionW >= 0,
      "maxProductionW",
      `must be >= 0, got ${opts.maxProductionW}`,
    );
    check(
      opts.maxConsumptionW === undefined || opts.maxConsumptionW >= 0,
      "maxConsumptionW",
      `must be >= 0, got ${opts.maxConsumptionW}`,
    );
    const intervals = [...opts.trueNetW.keys()].sort((a, b) => a - b);
    for (const k of intervals) {
      const trueW = opts.trueNetW.get(k) as number;
      check(Number.isFinite(trueW), `trueNetW[${k}]`, `must be a finite number of watts, got ${trueW}`);
      const error = sd === 0 ? 0 : opts.rng.normal(0, sd);
      // An error below -100 % would flip production into consumption; a forecast never does that.
      let w = Math.round(trueW * Math.max(0, 1 + error));
      if (opts.maxProductionW !== undefined) w = Math.min(w, opts.maxProductionW);
      if (opts.maxConsumptionW !== undefined) w = Math.max(w, -opts.maxConsumptionW);
      this.#forecastW.set(k, w === 0 ? 0 : w);
    }
  }

  /** Forecast net production of `interval` in watts; 0 for an interval outside the profile. */
  netW(interval: number): number {
    return this.#forecastW.get(interval) ?? 0;
  }

  intervals(): number[] {
    return [...this.#forecastW.keys()].sort((a, b) => a - b);
  }
}
