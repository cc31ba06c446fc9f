import * as fs from "node:fs";
import * as path from "node:path";
import { check, PetraError } from "../common/errors";

/**
 * The BDEW standard load profiles, 2025 edition (data/bdew/README.md says where they come from).
 * Each file holds, per month and day type, 96 quarter-hour energies in kWh for a customer group
 * normalised to 1,000,000 kWh a year.
 */
export type BdewKind = "h25" | "p25" | "s25";
export const BDEW_KINDS: readonly BdewKind[] = ["h25", "p25", "s25"];

/** WT workday, SA Saturday, FT Sunday and public holiday. */
export type BdewDayType = "WT" | "SA" | "FT";
export const BDEW_DAY_TYPES: readonly BdewDayType[] = ["WT", "SA", "FT"];

/** Quarter hours per day. */
export const BDEW_INTERVALS = 96;
/** The annual energy every profile is normalised to, kWh. */
export const BDEW_ANNUAL_KWH = 1_000_000;

/** The month names of the header row, January first. */
const MONTHS = [
  "Januar",
  "Februar",
  "März",
  "April",
  "Mai",
  "Juni",
  "Juli",
  "August",
  "September",
  "Oktober",
  "November",
  "Dezember",
];

const DEFAULT_DIR = path.resolve(__dirname, "..", "data", "bdew");

export interface BdewTable {
  file: string;
  /** 96 quarter-hour energies, kWh, for a group of 1,000,000 kWh a year. */
  profile(month: number, dayType: BdewDayType): number[];
}

function malformed(file: string, row: number, column: number, message: string): never {
  throw new PetraError("INVALID_ARGUMENT", `file: ${file} row ${row} column ${column}: ${message}`, {
    parameter: "file",
    file,
    row,
    column,
  });
}

function fmtQuarter(q: number): string {
  const m = (q * 15) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

/**
 * Parses a BDEW profile file. Rows and columns in errors count from 1 as a spreadsheet shows them
 * (row 1 is the month header, column 1 the time labels).
 */
export function parseBdewCsv(text: string, file: string): BdewTable {
  const rows = text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .filter((l) => l.trim().length > 0)
    .map((l) => l.split(",").map((c) => c.trim().normalize("NFC")));
  const months = rows[0] ?? [];
  const dayTypes = rows[1] ?? [];
  if (months.length < 2) malformed(file, 1, 1, "no month header row");
  if (dayTypes.length !== months.length)
    malformed(file, 2, 1, `has ${dayTypes.length} cells, the month row ${months.length}`);
  // (month index, day type) -> column index
  const columnOf = new Map<string, number>();
  for (let c = 1; c < months.length; c++) {
    const month = MONTHS.indexOf(months[c] as string);
    if (month < 0) malformed(file, 1, c + 1, `"${months[c]}" is not a German month name`);
    const dayType = dayTypes[c] as BdewDayType;
    if (!BDEW_DAY_TYPES.includes(dayType)) malformed(file, 2, c + 1, `"${dayTypes[c]}" is not WT, SA or FT`);
    const key = `${month + 1}/${dayType}`;
    if (columnOf.has(key)) malformed(file, 2, c + 1, `${months[c]} ${dayType} appears twice`);
    columnOf.set(key, c);
  }
  for (let m = 1; m <= 12; m++)
    for (const d of BDEW_DAY_TYPES)
      if (!columnOf.has(`${m}/${d}`)) malformed(file, 1, months.length, `no column for ${MONTHS[m - 1]} ${d}`);
  if (rows.length !== 2 + BDEW_INTERVALS)
    malformed(file, rows.length, 1, `has ${rows.length - 2} quarter-hour rows, expected ${BDEW_INTERVALS}`);
  const values: number[][] = [];
  for (let q = 0; q < BDEW_INTERVALS; q++) {
    const cells = rows[q + 2] as string[];
    const label = `${fmtQuarter(q)}-${fmtQuarter(q + 1)}`;
    if (cells[0] !== label) malformed(file, q + 3, 1, `"${cells[0]}" is not the quarter hour ${label}`);
    if (cells.length !== months.length)
      malformed(file, q + 3, cells.length, `has ${cells.length} cells, the header ${months.length}`);
    const row: number[] = [];
    for (let c = 1; c < cells.length; c++) {
      const cell = cells[c] as string;
      const v = cell === "" ? Number.NaN : Number(cell);
      if (!Number.isFinite(v) || v < 0)
        malformed(file, q + 3, c + 1, `"${cell}" is not a non-negative number (${months[c]} ${dayTypes[c]})`);
      row[c] = v;
    }
    values.push(row);
  }
  return {
    file,
    profile(month, dayType) {
      check(Number.isInteger(month) && month >= 1 && month <= 12, "month", `must be 1 to 12, got ${month}`);
      check(BDEW_DAY_TYPES.includes(dayType), "dayType", `must be WT, SA or FT, got ${dayType}`);
      const c = columnOf.get(`${month}/${dayType}`) as number;
      return values.map((row) => row[c] as number);
    },
  };
}

const cache = new Map<string, BdewTable>();

/** Reads (once per process) and parses a BDEW profile file. */
export function readBdewFile(file: string): BdewTable {
  const resolved = path.resolve(file);
  let table = cache.get(resolved);
  if (!table) {
    if (!fs.existsSync(resolved))
      throw new PetraError("INVALID_ARGUMENT", `file: no BDEW profile at ${resolved}`, {
        parameter: "file",
        file: resolved,
      });
    table = parseBdewCsv(fs.readFileSync(resolved, "utf8"), resolved);
    cache.set(resolved, table);
  }
  return table;
}

/**
 * The standard profile `kind` for a month (1-12) and day type: 96 quarter-hour energies in kWh for a
 * group of 1,000,000 kWh a year. `dir` defaults to the project's data/bdew.
 */
export function profile(kind: BdewKind, month: number, dayType: BdewDayType, dir = DEFAULT_DIR): number[] {
  check(BDEW_KINDS.includes(kind), "kind", `must be one of ${BDEW_KINDS.join(", ")}, got ${kind}`);
  return readBdewFile(path.join(dir, `${kind}.csv`)).profile(month, dayType);
}
