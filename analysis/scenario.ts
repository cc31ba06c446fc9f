import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { GAS_FUNDING_MODES } from "../agents/gas-funding";
import { offerChoiceSchema, raceBackoffSchema } from "../agents/prosumer-options";
import { PetraError } from "../common/errors";
import { BDEW_DAY_TYPES, type BdewDayType } from "./bdew";
import { generateHouseholds, type Occupancy } from "./household-generator";

const ROOT = path.resolve(__dirname, "..");

const timeOfDay = z.string().regex(/^([01]?\d|2[0-3]):[0-5]\d$/, "must be a time of day HH:MM");

const rotationSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("single") }).strict(),
  z.object({ kind: z.literal("pool"), poolSize: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal("per-interval") }).strict(),
  z.object({ kind: z.literal("per-offer") }).strict(),
]);

/** Block production of a live node: "automine", "fixed:MS" (one block every MS ms) or "exp:MEAN_MS" (PoW-like). */
export const blocksSchema = z
  .string()
  .regex(
    /^(automine|fixed:\d+|exp:\d+)$/,
    'must be "automine", "fixed:MS" or "exp:MEAN_MS" with MS a whole number of milliseconds',
  );

/** A profile read from a file of the PETra group's data. */
const fileProfileSchema = z
  .object({
    /** Path relative to the repository root. */
    file: z.string().min(1),
    format: z.enum(["petra-actors", "petra-microgrid"]),
    /** How a number in the file becomes watts: kW averaged over the interval (x1000) or kWh per interval. */
    unit: z.enum(["kW", "kWh-per-interval"]),
  })
  .strict();

/**
 * Households made by analysis/household-generator.ts for one day (96 quarter hours; intervalMinutes
 * must be 15). Optional fields take the generator's defaults.
 */
const generatedProfileSchema = z
  .object({
    format: z.literal("generated"),
    households: z.number().int().positive().max(100_000),
    month: z.number().int().min(1).max(12),
    dayType: z.enum(BDEW_DAY_TYPES as [BdewDayType, ...BdewDayType[]]),
    /** Seed of the population (not of a run: a scenario's households are fixed by its file). */
    seed: z.number().int().min(0).max(0xffffffff),
    pvShare: z.number().min(0).max(1).optional(),
    feederSize: z.number().int().positive().optional(),
    annualKWh: z
      .object({ min: z.number().positive(), max: z.number().positive() })
      .strict()
      .refine((a) => a.min <= a.max, "must have min <= max")
      .optional(),
    pvMedianKWp: z.number().positive().max(100).optional(),
    latitudeDeg: z.number().min(-66).max(66).optional(),
    longitudeDeg: z.number().min(-180).max(180).optional(),
    utcOffsetHours: z.number().min(-14).max(14).optional(),
    cloudiness: z.number().min(0).max(1).optional(),
  })
  .strict();

export const scenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().default(""),
    profile: z.discriminatedUnion("format", [fileProfileSchema, generatedProfileSchema]),
    intervalMinutes: z.number().int().positive().max(1440),
    window: z
      .object({
        /** Start of the first traded interval, time of day in the profile. */
        start: timeOfDay,
        intervalCount: z.number().int().positive(),
      })
      .strict(),
    market: z.object({ basePriceMicroPerWInterval: z.number().int().positive() }).strict(),
    prosumer: z
      .object({
        /** Assets are withdrawn this many intervals before delivery, and traded until delivery starts. */
        leadIntervals: z.number().int().min(1).default(1),
        forecastErrorRelativeSd: z.number().min(0).max(1).default(0),
        rotation: rotationSchema,
        gasFunding: z.enum(GAS_FUNDING_MODES),
        /** Ether given to each new address, in wei, as a decimal string (it exceeds 2^53). */
        gasPerAddressWei: z.string().regex(/^\d+$/, "must be a decimal string of wei"),
        /**
         * "dso": the DSO mints to the pseudonyms (PETra). "zk": the DSO issues allowances and mixer
         * notes, and pseudonyms withdraw with proofs through the relayer (agents/private-withdrawer.ts).
         */
        withdrawal: z.enum(["dso", "zk"], { message: 'must be "dso" or "zk"' }).default("dso"),
        /** agents/prosumer-options.ts */
        offerChoice: offerChoiceSchema,
        raceBackoff: raceBackoffSchema,
      })
      .strict(),
    dso: z
      .object({
        /** Connection limit of a household as a multiple of its peak consumption in the profile. */
        connectionLimitFactor: z.number().min(1).default(1.5),
        /** Feeder rating as a multiple of the sum of its households' peak |net power|. */
        feederRatingFactor: z.number().positive().default(1),
      })
      .strict()
      .default({}),
    live: z
      .object({
        intervalMs: z.number().int().positive(),
        blocks: blocksSchema,
      })
      .strict(),
  })
  .strict();

export type ScenarioFile = z.infer<typeof scenarioSchema>;
export type RotationConfig = z.infer<typeof rotationSchema>;
export type GeneratedProfile = z.infer<typeof generatedProfileSchema>;

export interface ScenarioHousehold {
  /** Stable id: feeder, home and column (the files repeat feeder/home pairs). */
  id: string;
  feeder: string;
  /** Column name in the profile file. */
  column: string;
  /** Peak production in the whole profile, W; 0 for a household without PV. */
  pvCapacityW: number;
  /** Largest consumption it may withdraw per interval, W. */
  connectionLimitW: number;
  /** True net production per market interval in the window, W (positive production). */
  trueNetW: Record<number, number>;
}

export interface Scenario {
  file: ScenarioFile;
  /** Where the scenario came from. */
  source: string;
  /** Market interval index of the window's first interval (intervals counted from midnight). */
  firstInterval: number;
  intervalCount: number;
  households: ScenarioHousehold[];
  /** Feeder -> rating in W. */
  feederRatingW: Record<string, number>;
  /**
   * Household id -> what only the ground-truth file may hold; generated scenarios only. Agents and
   * attacks never see it.
   */
  groundTruth?: Record<string, ScenarioHouseholdTruth>;
}

/** Per market interval in the window, like trueNetW. */
export interface ScenarioHouseholdTruth {
  persons: number;
  annualKWh: number;
  /** 1 = someone at home (awake or asleep), 0 = away: the ground-truth file's convention. */
  occupancy: Record<number, 0 | 1>;
  /** 0 away, 1 at home and awake, 2 at home and asleep. */
  occupancyState: Record<number, Occupancy>;
  /** True consumption, W. */
  loadW: Record<number, number>;
  /** True PV production, W. */
  pvW: Record<number, number>;
}

function fail(source: string, field: string, message: string): never {
  throw new PetraError("INVALID_SCENARIO", `${source}: ${field}: ${message}`, { source, field });
}

/** Validates a parsed scenario object; the error names the first offending field by its path. */
export function parseScenario(raw: unknown, source = "scenario"): ScenarioFile {
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0] as z.ZodIssue;
    const field = issue.path.length > 0 ? issue.path.join(".") : "(root)";
    const others = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : "";
    fail(source, field, `${issue.message}${others}`);
  }
  return result.data;
}

/** Resolves a scenario name (scenarios/<name>.json) or a path to a JSON file. */
export function scenarioPath(nameOrPath: string): string {
  if (/^[a-z0-9-]+$/.test(nameOrPath)) return path.join(ROOT, "scenarios", `${nameOrPath}.json`);
  return path.resolve(process.cwd(), nameOrPath);
}

/** Loads, validates and resolves a scenario: its households with their profiles in the window. */
export function loadScenario(nameOrPath: string): Scenario {
  const file = scenarioPath(nameOrPath);
  if (!fs.existsSync(file)) {
    throw new PetraError("INVALID_SCENARIO", `scenario: no scenario "${nameOrPath}" (looked for ${file})`, {
      field: "scenario",
      file,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new PetraError("INVALID_SCENARIO", `${file}: not valid JSON: ${(e as Error).message}`, { source: file });
  }
  return resolveScenario(parseScenario(raw, file), file);
}

export function resolveScenario(s: ScenarioFile, source: string): Scenario {
  const [hh, mm] = s.window.start.split(":").map(Number) as [number, number];
  const startMinute = hh * 60 + mm;
  if (startMinute % s.intervalMinutes !== 0)
    fail(source, "window.start", `must fall on an interval boundary of ${s.intervalMinutes} min`);
  const firstInterval = startMinute / s.intervalMinutes;
  const perDay = 1440 / s.intervalMinutes;
  if (firstInterval + s.window.intervalCount > perDay) {
    fail(
      source,
      "window.intervalCount",
      `runs past midnight: ${s.window.intervalCount} intervals from ${s.window.start}`,
    );
  }
  if (s.profile.format === "generated") return resolveGenerated(s, s.profile, source, firstInterval);
  const profile = s.profile;
  const profilePath = path.resolve(ROOT, profile.file);
  if (!fs.existsSync(profilePath)) fail(source, "profile.file", `no such file ${profilePath}`);
  const table = readProfile(profilePath, profile.format, source);
  const toW = profile.unit === "kW" ? 1000 : (1000 * 60) / s.intervalMinutes;

  const households: ScenarioHousehold[] = table.columns.map((c) => {
    const byTime = new Map<number, number>();
    for (const [minute, values] of table.rows) byTime.set(minute, Math.round((values[c.index] ?? 0) * toW));
    const all = [...byTime.values()];
    const trueNetW: Record<number, number> = {};
    for (let k = firstInterval; k < firstInterval + s.window.intervalCount; k++) {
      const w = byTime.get(k * s.intervalMinutes);
      if (w === undefined)
        fail(source, "window", `profile ${profile.file} has no row for ${fmtMinute(k * s.intervalMinutes)}`);
      trueNetW[k] = w;
    }
    const peakConsumptionW = Math.max(0, ...all.map((w) => -w));
    return {
      id: c.id,
      feeder: c.feeder,
      column: c.name,
      pvCapacityW: Math.max(0, ...all),
      connectionLimitW: Math.ceil(peakConsumptionW * s.dso.connectionLimitFactor),
      trueNetW,
    };
  });
  const feederRatingW: Record<string, number> = {};
  for (const h of households) {
    const peak = Math.max(h.pvCapacityW, h.connectionLimitW);
    feederRatingW[h.feeder] = (feederRatingW[h.feeder] ?? 0) + peak;
  }
  for (const f of Object.keys(feederRatingW))
    feederRatingW[f] = Math.ceil((feederRatingW[f] as number) * s.dso.feederRatingFactor);
  return { file: s, source, firstInterval, intervalCount: s.window.intervalCount, households, feederRatingW };
}

/** The households of a generated profile: the whole day is generated, the window is cut out of it. */
function resolveGenerated(s: ScenarioFile, p: GeneratedProfile, source: string, firstInterval: number): Scenario {
  if (s.intervalMinutes !== 15)
    fail(
      source,
      "intervalMinutes",
      `must be 15 for a generated profile (BDEW quarter hours), got ${s.intervalMinutes}`,
    );
  const { format: _, ...options } = p;
  const population = generateHouseholds({
    ...options,
    feederRatingFactor: s.dso.feederRatingFactor,
  });
  const window = Array.from({ length: s.window.intervalCount }, (_, i) => firstInterval + i);
  const inWindow = <T>(values: readonly T[]): Record<number, T> =>
    Object.fromEntries(window.map((k) => [k, values[k] as T]));
  const households: ScenarioHousehold[] = population.households.map((h) => ({
    id: h.id,
    feeder: h.feeder,
    column: h.id,
    pvCapacityW: h.pvCapacityW,
    connectionLimitW: Math.ceil(Math.max(0, ...h.netW.map((w) => -w)) * s.dso.connectionLimitFactor),
    trueNetW: inWindow(h.netW),
  }));
  const groundTruth: Record<string, ScenarioHouseholdTruth> = {};
  for (const t of population.truth) {
    groundTruth[t.id] = {
      persons: t.persons,
      annualKWh: t.annualKWh,
      occupancy: inWindow(t.occupancy.map((o) => (o === 0 ? 0 : 1))),
      occupancyState: inWindow(t.occupancy),
      loadW: inWindow(t.loadW),
      pvW: inWindow(t.pvW),
    };
  }
  const feederRatingW = Object.fromEntries(population.feeders.map((f) => [f.id, f.ratingW]));
  return {
    file: s,
    source,
    firstInterval,
    intervalCount: s.window.intervalCount,
    households,
    feederRatingW,
    groundTruth,
  };
}

interface ProfileTable {
  columns: { index: number; name: string; feeder: string; id: string }[];
  /** Minute of day -> values by column index, in the scenario's sign convention (production > 0). */
  rows: [number, number[]][];
}

function fmtMinute(m: number): string {
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}`;
}

function parseMinute(cell: string): number | undefined {
  const m = /^(\d{1,2}):(\d{2})$/.exec(cell.trim());
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

function readProfile(file: string, format: "petra-actors" | "petra-microgrid", source: string): ProfileTable {
  const lines = fs
    .readFileSync(file, "utf8")
    .split(/\r?\n/)
    .filter((l) => l.trim().length > 0)
    .map((l) => l.split(","));
  const numberAt = (cells: string[], i: number, line: number): number => {
    const cell = (cells[i] ?? "").trim();
    const v = cell === "" ? 0 : Number(cell);
    if (!Number.isFinite(v))
      fail(source, "profile.file", `${file} line ${line}: column ${i + 1} is not a number: "${cell}"`);
    return v;
  };
  if (format === "petra-actors") {
    const header = lines[0] ?? [];
    if (header[0] !== "Time")
      fail(source, "profile.format", `${file} does not start with a Time column (not petra-actors)`);
    const columns = header.slice(1).map((name, j) => {
      const [feeder, home] = name.split("/");
      return { index: j + 1, name, feeder: feeder ?? name, id: `f${feeder}-h${home}-c${j + 1}` };
    });
    const rows: [number, number[]][] = [];
    lines.slice(1).forEach((cells, i) => {
      const minute = parseMinute(cells[0] ?? "");
      if (minute === undefined) fail(source, "profile.file", `${file} line ${i + 2}: "${cells[0]}" is not a time`);
      rows.push([minute, cells.map((_, c) => (c === 0 ? 0 : numberAt(cells, c, i + 2)))]);
    });
    return { columns, rows };
  }
  const rowNamed = (label: string) => {
    const row = lines.find((cells) => cells[0] === label);
    if (!row) fail(source, "profile.format", `${file} has no "${label}" row (not petra-microgrid)`);
    return row;
  };
  const feeders = rowNamed("Feeder Line");
  const homes = rowNamed("HomeSequence");
  const capacity = rowNamed("Peak Production Capacity (KWH)");
  const columns: ProfileTable["columns"] = [];
  for (let c = 1; c < feeders.length && (feeders[c] ?? "").trim() !== ""; c++) {
    columns.push({
      index: c,
      name: `${feeders[c]}/${homes[c]}`,
      feeder: String(feeders[c]),
      id: `f${feeders[c]}-h${homes[c]}-c${c}`,
    });
  }
  const producer = new Set(columns.filter((c) => (capacity[c.index] ?? "").trim() !== "").map((c) => c.index));
  const rows: [number, number[]][] = [];
  lines.forEach((cells, i) => {
    const minute = parseMinute(cells[0] ?? "");
    if (minute === undefined) return;
    // This file counts consumption as positive; producers' columns hold production.
    const values: number[] = [];
    for (const c of columns) values[c.index] = (producer.has(c.index) ? 1 : -1) * numberAt(cells, c.index, i + 1);
    rows.push([minute, values]);
  });
  return { columns, rows };
}
