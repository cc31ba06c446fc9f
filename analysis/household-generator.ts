import { check } from "../common/errors";
import { createRng, type Rng } from "../common/rng";
import { BDEW_ANNUAL_KWH, BDEW_DAY_TYPES, BDEW_INTERVALS, type BdewDayType, profile } from "./bdew";

/**
 * A population of N households for one day (96 quarter hours) of a given month and BDEW day type.
 *
 * Each household has its own schedule (wake, sleep, absences) and a Markov chain over occupancy
 * (away, home and awake, asleep) that follows it with random lags, errands and night wakings.
 * Appliances switch on by occupancy and time of day: standby, fridge, lighting (by daylight),
 * electronics, small appliances, meals, laundry, dryer, dishwasher, showers with electric water
 * heating. Each household's expected daily energy is its annual consumption times the share of the
 * year that the BDEW H25 profile gives this month and day type; a per-interval correction, fitted on a
 * large calibration sample with its own fixed seed, makes the mean over many households track H25.
 * Households stay spiky: the correction is one smooth factor per quarter hour shared by everyone.
 *
 * PV: a clear-sky model from solar geometry (not P25: P25 is the grid draw of PV households, every
 * value positive, so it carries no generation shape), on a plane of per-household tilt and azimuth,
 * times a cloudiness process shared by the whole neighbourhood (one sky over a feeder).
 *
 * Sign convention of the market: net W = PV - load, positive for production.
 * Times are legal local time, as in the BDEW files (CET, CEST in April to October by default).
 */
export interface GeneratorOptions {
  households: number;
  /** 1-12. */
  month: number;
  dayType: BdewDayType;
  seed: number;
  /** Share of homes with PV, 0-1. Default 0.3. */
  pvShare?: number;
  /** Households per feeder. Default 50. */
  feederSize?: number;
  /** Feeder rating as a multiple of the sum of its households' peak |net W|. Default 1. */
  feederRatingFactor?: number;
  /** Range of annual consumption, kWh (a truncated log-normal by household size). Default 1,500-6,000. */
  annualKWh?: { min: number; max: number };
  /** Median PV size, kWp (log-normal, 2-15 kWp). Default 7. */
  pvMedianKWp?: number;
  /** Default 51 (central Germany). */
  latitudeDeg?: number;
  /** Default 10 (central Germany). */
  longitudeDeg?: number;
  /** Offset of the profile's clock from UTC. Default 2 in April-October, else 1 (German legal time). */
  utcOffsetHours?: number;
  /** Mean cloud cover, 0 (clear sky all day) to 1 (overcast). Default 0.5. */
  cloudiness?: number;
}

export type ResolvedGeneratorOptions = Required<GeneratorOptions>;

export const OCCUPANCY = { away: 0, awake: 1, asleep: 2 } as const;
/** 0 away, 1 at home and awake, 2 at home and asleep. */
export type Occupancy = (typeof OCCUPANCY)[keyof typeof OCCUPANCY];

/** What the market and the agents may see of a household. */
export interface GeneratedHousehold {
  id: string;
  feeder: string;
  /** Nominal PV size, W (kWp x 1000); 0 without PV. */
  pvCapacityW: number;
  /** Net W per quarter hour of the day (PV - load; positive is production), 96 values. */
  netW: number[];
}

/** What only the ground-truth file may hold. */
export interface HouseholdTruth {
  id: string;
  persons: number;
  annualKWh: number;
  pvCapacityW: number;
  /** Per quarter hour: 0 away, 1 home and awake, 2 home and asleep. */
  occupancy: Occupancy[];
  /** True consumption per quarter hour, W (interval mean). */
  loadW: number[];
  /** True PV production per quarter hour, W (interval mean). */
  pvW: number[];
}

export interface GeneratedFeeder {
  id: string;
  householdIds: string[];
  /** ceil(feederRatingFactor x sum of its households' peak |net W|). */
  ratingW: number;
}

export interface Calibration {
  /** Seed and size of the calibration sample (independent of the population's seed). */
  seed: number;
  sampleSize: number;
  /** Multiplicative correction per quarter hour applied to every household's appliance load. */
  correction: number[];
  /** Pearson correlation of the uncorrected sample mean with H25. */
  rawCorrelation: number;
}

export interface GeneratedPopulation {
  options: ResolvedGeneratorOptions;
  households: GeneratedHousehold[];
  feeders: GeneratedFeeder[];
  truth: HouseholdTruth[];
  calibration: Calibration;
}

const Q = BDEW_INTERVALS;
const MINUTES_PER_Q = 15;
const CALIBRATION_SEED = 20250415;
const CALIBRATION_SAMPLE = 8000;
/** Share of homes by number of persons 1-5 (German households, Destatis 2023, 5+ as 5). */
const PERSONS_SHARE = [0.41, 0.33, 0.12, 0.1, 0.04];
/** Median annual consumption by persons 1-5, kWh (German averages). */
const PERSONS_MEDIAN_KWH = [1700, 2700, 3400, 4000, 4700];

function defaults(o: GeneratorOptions): ResolvedGeneratorOptions {
  return {
    pvShare: 0.3,
    feederSize: 50,
    feederRatingFactor: 1,
    annualKWh: { min: 1500, max: 6000 },
    pvMedianKWp: 7,
    latitudeDeg: 51,
    longitudeDeg: 10,
    utcOffsetHours: o.month >= 4 && o.month <= 10 ? 2 : 1,
    cloudiness: 0.5,
    ...(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as GeneratorOptions),
  };
}

function validate(o: ResolvedGeneratorOptions): void {
  check(
    Number.isInteger(o.households) && o.households >= 1,
    "households",
    `must be a positive integer, got ${o.households}`,
  );
  check(Number.isInteger(o.month) && o.month >= 1 && o.month <= 12, "month", `must be 1 to 12, got ${o.month}`);
  check(BDEW_DAY_TYPES.includes(o.dayType), "dayType", `must be WT, SA or FT, got ${o.dayType}`);
  check(Number.isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff, "seed", `must be in [0, 2^32), got ${o.seed}`);
  check(o.pvShare >= 0 && o.pvShare <= 1, "pvShare", `must be in [0, 1], got ${o.pvShare}`);
  check(
    Number.isInteger(o.feederSize) && o.feederSize >= 1,
    "feederSize",
    `must be a positive integer, got ${o.feederSize}`,
  );
  check(
    o.feederRatingFactor > 0 && Number.isFinite(o.feederRatingFactor),
    "feederRatingFactor",
    `must be a positive number, got ${o.feederRatingFactor}`,
  );
  check(
    o.annualKWh.min > 0 && o.annualKWh.max >= o.annualKWh.min,
    "annualKWh",
    `must have 0 < min <= max, got ${o.annualKWh.min}-${o.annualKWh.max}`,
  );
  check(o.pvMedianKWp > 0, "pvMedianKWp", `must be positive, got ${o.pvMedianKWp}`);
  check(
    Math.abs(o.latitudeDeg) <= 66,
    "latitudeDeg",
    `must be within +-66 (polar days are not modelled), got ${o.latitudeDeg}`,
  );
  check(Math.abs(o.longitudeDeg) <= 180, "longitudeDeg", `must be within +-180, got ${o.longitudeDeg}`);
  check(Math.abs(o.utcOffsetHours) <= 14, "utcOffsetHours", `must be within +-14, got ${o.utcOffsetHours}`);
  check(o.cloudiness >= 0 && o.cloudiness <= 1, "cloudiness", `must be in [0, 1], got ${o.cloudiness}`);
}

// ---------------------------------------------------------------------------------------------
// Sun

const DEG = Math.PI / 180;
const MID_MONTH_DAY = [15, 46, 74, 105, 135, 166, 196, 227, 258, 288, 319, 349];
/** Sub-samples per quarter hour for interval means of solar quantities. */
const SUN_STEPS = 5;

interface SunPosition {
  /** Unit vector (east, north, up) per sub-sample of each quarter hour, Q x SUN_STEPS. */
  east: Float64Array;
  north: Float64Array;
  up: Float64Array;
  /** Sun elevation at the middle of each quarter hour, degrees. */
  elevationDeg: Float64Array;
}

interface Site {
  month: number;
  latitudeDeg: number;
  longitudeDeg: number;
  utcOffsetHours: number;
}

function sunPosition(site: Site): SunPosition {
  const n = MID_MONTH_DAY[site.month - 1] as number;
  const decl = 23.45 * DEG * Math.sin((2 * Math.PI * (284 + n)) / 365);
  const b = (2 * Math.PI * (n - 81)) / 364;
  const eqTimeMin = 9.87 * Math.sin(2 * b) - 7.53 * Math.cos(b) - 1.5 * Math.sin(b);
  const phi = site.latitudeDeg * DEG;
  const east = new Float64Array(Q * SUN_STEPS);
  const north = new Float64Array(Q * SUN_STEPS);
  const up = new Float64Array(Q * SUN_STEPS);
  const elevationDeg = new Float64Array(Q);
  const at = (clockMin: number) => {
    const solarMin = clockMin - 60 * site.utcOffsetHours + 4 * site.longitudeDeg + eqTimeMin;
    const omega = 15 * (solarMin / 60 - 12) * DEG;
    return {
      e: -Math.cos(decl) * Math.sin(omega),
      nn: Math.cos(phi) * Math.sin(decl) - Math.sin(phi) * Math.cos(decl) * Math.cos(omega),
      u: Math.sin(phi) * Math.sin(decl) + Math.cos(phi) * Math.cos(decl) * Math.cos(omega),
    };
  };
  for (let q = 0; q < Q; q++) {
    for (let s = 0; s < SUN_STEPS; s++) {
      const p = at(q * MINUTES_PER_Q + ((s + 0.5) * MINUTES_PER_Q) / SUN_STEPS);
      east[q * SUN_STEPS + s] = p.e;
      north[q * SUN_STEPS + s] = p.nn;
      up[q * SUN_STEPS + s] = p.u;
    }
    elevationDeg[q] = Math.asin(Math.max(-1, Math.min(1, at(q * MINUTES_PER_Q + 7.5).u))) / DEG;
  }
  return { east, north, up, elevationDeg };
}

/**
 * Clear-sky output per kWp (W) of a plane with the given tilt and azimuth (0 south, + west), per
 * quarter hour: Haurwitz global horizontal irradiance, split 85/15 into beam and isotropic diffuse.
 */
function clearSkyPvWPerKWp(sun: SunPosition, tiltDeg: number, azimuthDeg: number, performanceRatio: number) {
  const beta = tiltDeg * DEG;
  const gamma = azimuthDeg * DEG;
  const nx = -Math.sin(beta) * Math.sin(gamma);
  const ny = -Math.sin(beta) * Math.cos(gamma);
  const nz = Math.cos(beta);
  const out = new Float64Array(Q);
  for (let q = 0; q < Q; q++) {
    let sum = 0;
    for (let s = 0; s < SUN_STEPS; s++) {
      const i = q * SUN_STEPS + s;
      const cosZ = sun.up[i] as number;
      if (cosZ <= 0.01) continue;
      const ghi = 1098 * cosZ * Math.exp(-0.057 / cosZ);
      const dni = (0.85 * ghi) / cosZ;
      const cosTheta = Math.max(0, (sun.east[i] as number) * nx + (sun.north[i] as number) * ny + cosZ * nz);
      sum += dni * cosTheta + 0.15 * ghi * ((1 + nz) / 2);
    }
    // W/m2 over 1000 W/m2 at STC is the output per W of nominal power; x 1000 W per kWp.
    out[q] = (sum / SUN_STEPS) * performanceRatio;
  }
  return out;
}

/** Shared clear-sky index per quarter hour: cloud cover follows an AR(1) around the day's mean (Kasten-Czeplak). */
function skyIndex(rng: Rng, cloudiness: number): Float64Array {
  const out = new Float64Array(Q);
  if (cloudiness === 0) return out.fill(1);
  const dayCover = clamp(cloudiness + rng.normal(0, 0.2), 0, 1);
  let cover = clamp(dayCover + rng.normal(0, 0.15), 0, 1);
  for (let q = 0; q < Q; q++) {
    cover = clamp(cover + 0.15 * (dayCover - cover) + rng.normal(0, 0.12), 0, 1);
    out[q] = 1 - 0.75 * cover ** 3.4;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Households

interface Context {
  month: number;
  dayType: BdewDayType;
  sun: SunPosition;
  heatingSeason: boolean;
  summer: boolean;
}

interface Absence {
  fromMin: number;
  toMin: number;
}

interface Traits {
  persons: number;
  wakeMin: number;
  /** Minutes from midnight of this day; past 1440 means after the next midnight. */
  sleepMin: number;
  absences: Absence[];
  standbyW: number;
  fridgeW: number;
  lightW: number;
  electronicsW: number;
  waterHeating: "none" | "boiler" | "instant";
  washer: boolean;
  dryer: boolean;
  dishwasher: boolean;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

function logNormalWithin(rng: Rng, median: number, sigma: number, lo: number, hi: number): number {
  for (let i = 0; i < 20; i++) {
    const v = median * Math.exp(rng.normal(0, sigma));
    if (v >= lo && v <= hi) return v;
  }
  return clamp(median, lo, hi);
}

function drawPersons(rng: Rng): number {
  let u = rng.next();
  for (let p = 0; p < PERSONS_SHARE.length; p++) {
    u -= PERSONS_SHARE[p] as number;
    if (u < 0) return p + 1;
  }
  return PERSONS_SHARE.length;
}

const SCHEDULE: Record<BdewDayType, { wake: number; sleep: number; dayOut: number; dayOutMean: number }> = {
  WT: { wake: 6.5 * 60, sleep: 23.25 * 60, dayOut: 0, dayOutMean: 0 },
  SA: { wake: 8 * 60, sleep: 23.75 * 60, dayOut: 0.35, dayOutMean: 11 * 60 },
  FT: { wake: 8.5 * 60, sleep: 23 * 60, dayOut: 0.3, dayOutMean: 12 * 60 },
};

function drawTraits(rng: Rng, ctx: Context): Traits {
  const persons = drawPersons(rng);
  const sched = SCHEDULE[ctx.dayType];
  const wakeMin = clamp(rng.normal(sched.wake, ctx.dayType === "WT" ? 50 : 70), 4.5 * 60, 11 * 60);
  // Later nights in the long days of summer.
  const summerNightMin = ctx.month >= 5 && ctx.month <= 8 ? 30 : 0;
  let sleepMin = clamp(rng.normal(sched.sleep + summerNightMin, 60), 21 * 60, 26 * 60);
  const absences: Absence[] = [];
  if (ctx.dayType === "WT") {
    // Everyone out at work or school: likelier for small households.
    const pEmpty = [0.55, 0.45, 0.35, 0.35, 0.3][persons - 1] as number;
    if (rng.next() < pEmpty) {
      const from = wakeMin + Math.max(20, rng.normal(60, 20));
      absences.push({ fromMin: from, toMin: from + clamp(rng.normal(9 * 60, 90), 4 * 60, 11 * 60) });
    }
  } else if (rng.next() < sched.dayOut) {
    const from = Math.max(wakeMin + 30, rng.normal(sched.dayOutMean, 120));
    absences.push({ fromMin: from, toMin: from + 60 * (2 + 5 * rng.next()) });
  }
  const pEvening = ctx.dayType === "SA" ? 0.3 : 0.12;
  if (rng.next() < pEvening) {
    const from = Math.max(rng.normal(19.5 * 60, 60), (absences[0]?.toMin ?? 0) + 30);
    const to = from + 60 * (2 + 2 * rng.next());
    absences.push({ fromMin: from, toMin: to });
    sleepMin = Math.max(sleepMin, to + 30);
  }
  const waterDraw = rng.next();
  return {
    persons,
    wakeMin,
    sleepMin,
    absences,
    standbyW: (45 + 20 * persons) * Math.exp(rng.normal(0, 0.3)) + (ctx.heatingSeason ? 50 * rng.next() : 0),
    fridgeW: 90 + 60 * rng.next() + (rng.next() < 0.4 ? 80 : 0),
    lightW: (60 + 40 * persons) * Math.exp(rng.normal(0, 0.35)),
    electronicsW: (80 + 40 * persons) * Math.exp(rng.normal(0, 0.35)),
    waterHeating: waterDraw < 0.18 ? "instant" : waterDraw < 0.3 ? "boiler" : "none",
    washer: rng.next() < 0.95,
    dryer: rng.next() < 0.4,
    dishwasher: rng.next() < 0.7,
  };
}

function scheduledState(t: Traits, minute: number): Occupancy {
  if (minute < t.wakeMin) return t.sleepMin > 1440 && minute < t.sleepMin - 1440 ? OCCUPANCY.awake : OCCUPANCY.asleep;
  if (minute >= t.sleepMin) return OCCUPANCY.asleep;
  for (const a of t.absences) if (minute >= a.fromMin && minute < a.toMin) return OCCUPANCY.away;
  return OCCUPANCY.awake;
}

/** Markov chain over occupancy that follows the household's schedule with random lags, errands and night wakings. */
function simulateOccupancy(rng: Rng, t: Traits): Occupancy[] {
  const out: Occupancy[] = [];
  let state = scheduledState(t, MINUTES_PER_Q / 2);
  for (let q = 0; q < Q; q++) {
    const minute = q * MINUTES_PER_Q + MINUTES_PER_Q / 2;
    const target = scheduledState(t, minute);
    if (q > 0) {
      if (state !== target) {
        // Move one step towards the schedule (away <-> awake <-> asleep).
        if (rng.next() < 0.45)
          state = target === OCCUPANCY.awake || state === OCCUPANCY.awake ? target : OCCUPANCY.awake;
      } else if (state === OCCUPANCY.awake && minute > 8 * 60 && minute < 20 * 60 && rng.next() < 0.02) {
        state = OCCUPANCY.away; // an errand; the schedule pulls it back
      } else if (state === OCCUPANCY.asleep && rng.next() < 0.008) {
        state = OCCUPANCY.awake; // awake at night for a while
      }
    }
    out.push(state);
  }
  return out;
}

/** Adds a programme (W per quarter hour) starting at quarter hour q; what runs past midnight is cut. */
function run(load: Float64Array, q: number, programme: readonly number[], scale = 1): void {
  for (let i = 0; i < programme.length && q + i < Q; i++)
    load[q + i] = (load[q + i] as number) + scale * (programme[i] as number);
}

/** The first quarter hour at or after `fromMin` (within `windowMin`) when someone is home and awake. */
function firstAwake(occ: readonly Occupancy[], fromMin: number, windowMin: number): number | undefined {
  const first = Math.max(0, Math.floor(fromMin / MINUTES_PER_Q));
  const last = Math.min(Q - 1, Math.floor((fromMin + windowMin) / MINUTES_PER_Q));
  for (let q = first; q <= last; q++) if (occ[q] === OCCUPANCY.awake) return q;
  return undefined;
}

const WASHER = [1900, 300, 150, 450, 150];
const DRYER = [2200, 2200, 2000, 1200, 500];
const DISHWASHER = [1900, 150, 150, 1700, 100];

/** Appliance load per quarter hour, W, before the household's scale and the calibration. */
function simulateLoad(rng: Rng, t: Traits, occ: readonly Occupancy[], ctx: Context): Float64Array {
  const load = new Float64Array(Q);
  const weekend = ctx.dayType !== "WT";
  const fridgeDuty = ctx.summer ? 0.45 : 0.32;
  let electronicsOn = false;
  for (let q = 0; q < Q; q++) {
    const o = occ[q] as Occupancy;
    let w = t.standbyW * (1 + rng.normal(0, 0.05)) + t.fridgeW * clamp(fridgeDuty + rng.normal(0, 0.2), 0, 1);
    if (o === OCCUPANCY.awake) {
      const elevation = ctx.sun.elevationDeg[q] as number;
      const light = elevation < 5 ? 1 : elevation < 15 ? 0.4 : 0.08;
      w += t.lightW * light * (0.6 + 0.6 * rng.next());
      electronicsOn = electronicsOn ? rng.next() < 0.85 : rng.next() < 0.3;
      if (electronicsOn) w += t.electronicsW * (0.7 + 0.6 * rng.next());
      const minute = q * MINUTES_PER_Q;
      const daytime = minute >= 10 * 60 && minute < 18 * 60;
      if (rng.next() < (daytime ? 0.06 : 0.03)) w += 300 + 1200 * rng.next(); // iron, vacuum, hair dryer, oven, microwave
      if (rng.next() < 0.03) w += 400; // kettle
      if (t.waterHeating === "instant" && rng.next() < 0.05) w += 700; // hot water at a tap
    } else {
      electronicsOn = false;
    }
    load[q] = w;
  }
  // Meals: planned times; cooked if someone is home and awake then, or within the window.
  if (rng.next() < 0.6) {
    const q = firstAwake(occ, t.wakeMin + rng.normal(30, 10), 60);
    if (q !== undefined) run(load, q, [900]);
  }
  if (rng.next() < (weekend ? 0.65 : 0.3)) {
    const q = firstAwake(occ, rng.normal(12.5 * 60, 40), 90);
    if (q !== undefined) run(load, q, [1600, 1400], 0.8 + 0.1 * t.persons);
  }
  let dinnerQ: number | undefined;
  if (rng.next() < 0.75) {
    dinnerQ = firstAwake(occ, rng.normal(18.75 * 60, 50), 90);
    if (dinnerQ !== undefined) {
      run(load, dinnerQ, [1500, 1200, 600], 0.7 + 0.1 * t.persons);
      if (rng.next() < 0.2) run(load, dinnerQ, [2200, 1300, 1300]);
    }
  }
  // Laundry and dishes.
  if (
    t.washer &&
    rng.next() <
      Math.min(0.9, ((1 + 0.8 * t.persons) / 7) * (ctx.dayType === "SA" ? 1.4 : ctx.dayType === "FT" ? 0.5 : 1))
  ) {
    const q = firstAwake(occ, t.wakeMin + 30 + rng.next() * Math.max(0, t.sleepMin - t.wakeMin - 210), 180);
    if (q !== undefined) {
      run(load, q, WASHER);
      if (t.dryer && rng.next() < 0.6) run(load, q + WASHER.length, DRYER);
    }
  }
  if (t.dishwasher && rng.next() < Math.min(1, 0.25 + 0.2 * t.persons)) {
    const fromMin =
      dinnerQ !== undefined && rng.next() < 0.7
        ? dinnerQ * MINUTES_PER_Q + rng.normal(60, 30)
        : rng.normal(14 * 60, 120);
    const q = firstAwake(occ, fromMin, 120);
    if (q !== undefined) run(load, q, DISHWASHER);
  }
  // Showers, one chance per person, in the morning or the evening, one shower at a time.
  const showered = new Set<number>();
  for (let p = 0; p < t.persons; p++) {
    if (rng.next() >= 0.75) continue;
    const fromMin = rng.next() < 0.65 ? t.wakeMin + rng.normal(20, 10) : rng.normal(21.5 * 60, 60);
    let q = firstAwake(occ, fromMin, 60);
    while (q !== undefined && showered.has(q)) q = q + 1 < Q && occ[q + 1] === OCCUPANCY.awake ? q + 1 : undefined;
    if (q === undefined) continue;
    showered.add(q);
    if (t.waterHeating === "instant") run(load, q, [(21000 * (4 + 4 * rng.next())) / MINUTES_PER_Q]);
    else if (t.waterHeating === "boiler") run(load, q, [2000, 2000, 1000]);
  }
  return load;
}

// ---------------------------------------------------------------------------------------------
// Calibration

function context(month: number, dayType: BdewDayType, site: Site): Context {
  return {
    month,
    dayType,
    sun: sunPosition(site),
    heatingSeason: month <= 4 || month >= 10,
    summer: month >= 6 && month <= 8,
  };
}

interface DrawnHousehold {
  traits: Traits;
  annualKWh: number;
  occupancy: Occupancy[];
  rawW: Float64Array;
}

function drawHousehold(rng: Rng, ctx: Context, annual: { min: number; max: number }): DrawnHousehold {
  const traits = drawTraits(rng.fork("traits"), ctx);
  const annualKWh = Math.round(
    logNormalWithin(rng.fork("annual"), PERSONS_MEDIAN_KWH[traits.persons - 1] as number, 0.25, annual.min, annual.max),
  );
  const occupancy = simulateOccupancy(rng.fork("occupancy"), traits);
  const rawW = simulateLoad(rng.fork("appliances"), traits, occupancy, ctx);
  return { traits, annualKWh, occupancy, rawW };
}

/** Pearson correlation of two equally long series. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  check(a.length === b.length && a.length > 1, "b", `must have the length of a (${a.length}), got ${b.length}`);
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma;
    const db = (b[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Standard deviation over mean (population sd). */
export function coefficientOfVariation(values: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i] as number;
  mean /= values.length;
  let v = 0;
  for (let i = 0; i < values.length; i++) v += ((values[i] as number) - mean) ** 2;
  return Math.sqrt(v / values.length) / mean;
}

interface LoadModel {
  calibration: Calibration;
  /** Mean raw daily energy by persons 1-5, Wh (each household's scale divides by it). */
  rawDailyWhByPersons: number[];
  /** Share of the annual energy that H25 assigns to one day of this month and day type. */
  dayShare: number;
}

const models = new Map<string, LoadModel>();

/**
 * Fits the load model to H25 for a month, day type and site on a calibration sample with its own
 * fixed seed (deterministic; computed once per process and key).
 */
function loadModel(month: number, dayType: BdewDayType, site: Site, annual: { min: number; max: number }): LoadModel {
  const key = JSON.stringify([month, dayType, site, annual]);
  const cached = models.get(key);
  if (cached) return cached;
  const h25 = profile("h25", month, dayType);
  const dayShare = h25.reduce((s, v) => s + v, 0) / BDEW_ANNUAL_KWH;
  const ctx = context(month, dayType, site);
  const root = createRng(CALIBRATION_SEED);
  const sample: DrawnHousehold[] = [];
  for (let i = 0; i < CALIBRATION_SAMPLE; i++) sample.push(drawHousehold(root.fork(`calibration/${i}`), ctx, annual));
  const whSum = [0, 0, 0, 0, 0];
  const count = [0, 0, 0, 0, 0];
  for (const h of sample) {
    const p = h.traits.persons - 1;
    whSum[p] = (whSum[p] as number) + h.rawW.reduce((s, w) => s + w, 0) / 4;
    count[p] = (count[p] as number) + 1;
  }
  const rawDailyWhByPersons = whSum.map((s, p) => s / Math.max(1, count[p] as number));
  // The sample's mean scaled load, and the mean H25 target at the sample's mean annual consumption.
  const scaled = new Float64Array(Q);
  const raw = new Float64Array(Q);
  let annualSum = 0;
  for (const h of sample) {
    const k = (h.annualKWh * 1000 * dayShare) / (rawDailyWhByPersons[h.traits.persons - 1] as number);
    annualSum += h.annualKWh;
    for (let q = 0; q < Q; q++) {
      scaled[q] = (scaled[q] as number) + (k * (h.rawW[q] as number)) / sample.length;
      raw[q] = (raw[q] as number) + (h.rawW[q] as number) / sample.length;
    }
  }
  const meanAnnualKWh = annualSum / sample.length;
  const target = h25.map((kwh) => ((kwh * meanAnnualKWh) / BDEW_ANNUAL_KWH) * 4000);
  // A three-tap smoothing of the ratio keeps the sample's own noise out of the correction.
  const ratio = target.map((w, q) => w / (scaled[q] as number));
  const correction = ratio.map((_, q) => {
    const prev = ratio[Math.max(0, q - 1)] as number;
    const next = ratio[Math.min(Q - 1, q + 1)] as number;
    return (prev + 2 * (ratio[q] as number) + next) / 4;
  });
  const model: LoadModel = {
    calibration: {
      seed: CALIBRATION_SEED,
      sampleSize: CALIBRATION_SAMPLE,
      correction,
      rawCorrelation: pearson(raw, h25),
    },
    rawDailyWhByPersons,
    dayShare,
  };
  models.set(key, model);
  return model;
}

// ---------------------------------------------------------------------------------------------
// Population

/** Generates N households for one day; the same options give the same population. */
export function generateHouseholds(options: GeneratorOptions): GeneratedPopulation {
  const o = defaults(options);
  validate(o);
  const site: Site = {
    month: o.month,
    latitudeDeg: o.latitudeDeg,
    longitudeDeg: o.longitudeDeg,
    utcOffsetHours: o.utcOffsetHours,
  };
  const model = loadModel(o.month, o.dayType, site, o.annualKWh);
  const ctx = context(o.month, o.dayType, site);
  const root = createRng(o.seed);
  const sky = skyIndex(root.fork("weather"), o.cloudiness);
  const feederCount = Math.ceil(o.households / o.feederSize);
  // Ids keep their width up to 99 feeders and 9,999 homes, so household i has the same id whatever N is.
  const feederDigits = Math.max(2, String(feederCount).length);
  const homeDigits = Math.max(4, String(o.households).length);
  const households: GeneratedHousehold[] = [];
  const truth: HouseholdTruth[] = [];
  const feeders: GeneratedFeeder[] = [];
  for (let i = 0; i < o.households; i++) {
    const f = Math.floor(i / o.feederSize);
    const feeder = `F${String(f + 1).padStart(feederDigits, "0")}`;
    // The DSO registry and file names take letters, digits and . _ - only.
    const id = `${feeder}-H${String(i + 1).padStart(homeDigits, "0")}`;
    // Each household draws from its own stream: household i is the same whatever N and pvShare are.
    const rng = root.fork(`household/${i}`);
    const h = drawHousehold(rng, ctx, o.annualKWh);
    const k = (h.annualKWh * 1000 * model.dayShare) / (model.rawDailyWhByPersons[h.traits.persons - 1] as number);
    const loadW = Array.from(h.rawW, (w, q) => Math.round(w * k * (model.calibration.correction[q] as number)));
    const pvRng = rng.fork("pv");
    let pvCapacityW = 0;
    let pvW: number[] = new Array<number>(Q).fill(0);
    if (pvRng.next() < o.pvShare) {
      const kWp = Math.round(10 * logNormalWithin(pvRng, o.pvMedianKWp, 0.35, 2, 15)) / 10;
      pvCapacityW = Math.round(kWp * 1000);
      const tilt = 15 + 30 * pvRng.next();
      const azimuth = clamp(pvRng.normal(0, 45), -90, 90);
      const perKWp = clearSkyPvWPerKWp(ctx.sun, tilt, azimuth, 0.75 + 0.12 * pvRng.next());
      pvW = Array.from(perKWp, (w, q) => Math.min(pvCapacityW, Math.round(w * kWp * (sky[q] as number))));
    }
    const netW = loadW.map((w, q) => (pvW[q] as number) - w);
    households.push({ id, feeder, pvCapacityW, netW });
    truth.push({
      id,
      persons: h.traits.persons,
      annualKWh: h.annualKWh,
      pvCapacityW,
      occupancy: h.occupancy,
      loadW,
      pvW,
    });
    if (feeders.length === f) feeders.push({ id: feeder, householdIds: [], ratingW: 0 });
    const fd = feeders[f] as GeneratedFeeder;
    fd.householdIds.push(id);
    fd.ratingW += Math.max(...netW.map(Math.abs));
  }
  for (const fd of feeders) fd.ratingW = Math.ceil(fd.ratingW * o.feederRatingFactor);
  // A copy: the model is cached for the next population.
  const calibration = { ...model.calibration, correction: [...model.calibration.correction] };
  return { options: o, households, feeders, truth, calibration };
}
