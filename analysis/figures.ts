import * as fs from "node:fs";
import * as path from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { check } from "../common/errors";
import { type Distribution, distribution } from "./clearing-times";
import { resolveScenario, type Scenario } from "./scenario";

/**
 * The paper's Figure 3 (load and generation per interval over the day) and Figure 4 (histogram of
 * offer clearing times, with our statistics beside the paper's) as hand-written SVG, and PNG rendered
 * from it with resvg. The PNG uses only the DejaVu Sans file in analysis/assets (no system fonts), so
 * the same input gives the same bytes on every machine.
 */

const FONT_FILE = path.join(__dirname, "assets", "DejaVuSans.ttf");
const FONT_FAMILY = "DejaVu Sans";
/** Tableau 10: distinguishable, colour-blind friendly enough for up to ten series. */
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];
/** More households than this are drawn as two totals (generation, load) instead of one stack each. */
export const FIGURE3_MAX_SERIES = PALETTE.length;

// ---------------------------------------------------------------------------------------------
// SVG helpers: every number goes through num(), every text through esc(), so output is stable.

function num(x: number): string {
  const r = Math.round(x * 100) / 100;
  return Object.is(r, -0) ? "0" : String(r);
}

function esc(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

type Attrs = Record<string, string | number>;

function attrs(a: Attrs): string {
  return Object.entries(a)
    .map(([k, v]) => ` ${k}="${typeof v === "number" ? num(v) : esc(v)}"`)
    .join("");
}

function el(name: string, a: Attrs): string {
  return `<${name}${attrs(a)}/>`;
}

function text(x: number, y: number, content: string, a: Attrs = {}): string {
  return `<text${attrs({ x, y, ...a })}>${esc(content)}</text>`;
}

function svgDocument(width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}, sans-serif" font-size="12">`,
    el("rect", { x: 0, y: 0, width, height, fill: "#ffffff" }),
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 x 10^k, about `target` of them. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) {
    const step = lo === 0 ? 1 : 10 ** Math.floor(Math.log10(Math.abs(lo)));
    return [lo - step, lo, lo + step];
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) as number) * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.round(v / step) * step);
  if ((ticks[ticks.length - 1] as number) < hi) ticks.push((ticks[ticks.length - 1] as number) + step);
  return ticks;
}

function fmtTick(v: number): string {
  return String(Math.round(v * 1e6) / 1e6);
}

function fmtClock(minute: number): string {
  const m = ((minute % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

interface Plot {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Y axis with grid lines and tick labels; returns the value -> y mapping. */
function yAxis(out: string[], plot: Plot, ticks: number[], label: string): (v: number) => number {
  const lo = ticks[0] as number;
  const hi = ticks[ticks.length - 1] as number;
  const y = (v: number) => plot.top + plot.height - ((v - lo) / (hi - lo)) * plot.height;
  for (const t of ticks) {
    out.push(el("line", { x1: plot.left, y1: y(t), x2: plot.left + plot.width, y2: y(t), stroke: "#e0e0e0" }));
    out.push(text(plot.left - 6, y(t) + 4, fmtTick(t), { "text-anchor": "end" }));
  }
  const cx = plot.left - 52;
  const cy = plot.top + plot.height / 2;
  out.push(text(cx, cy, label, { "text-anchor": "middle", transform: `rotate(-90 ${num(cx)} ${num(cy)})` }));
  return y;
}

function frame(out: string[], plot: Plot): void {
  out.push(
    el("rect", {
      x: plot.left,
      y: plot.top,
      width: plot.width,
      height: plot.height,
      fill: "none",
      stroke: "#333333",
    }),
  );
}

function legend(out: string[], x: number, y: number, items: { label: string; color: string; dashed?: boolean }[]) {
  items.forEach((item, i) => {
    const yy = y + i * 20;
    if (item.dashed)
      out.push(
        el("line", {
          x1: x,
          y1: yy + 6,
          x2: x + 14,
          y2: yy + 6,
          stroke: item.color,
          "stroke-width": 2,
          "stroke-dasharray": "4 2",
        }),
      );
    else out.push(el("rect", { x, y: yy, width: 14, height: 12, fill: item.color }));
    out.push(text(x + 20, yy + 10, item.label));
  });
}

// ---------------------------------------------------------------------------------------------
// Figure 3

export interface Figure3Series {
  label: string;
  /** Net power per interval from `firstInterval` on, W: positive is generation, negative load. */
  netW: readonly number[];
}

export interface Figure3Input {
  title?: string;
  intervalMinutes: number;
  /** Interval index (from midnight) of netW[0]. */
  firstInterval: number;
  households: readonly Figure3Series[];
  /** "kWh": energy per interval (W x interval / 1000); "kW": mean power. Default "kWh". */
  unit?: "kWh" | "kW";
  /** Shaded as the trading window. */
  window?: { firstInterval: number; intervalCount: number };
}

/**
 * Figure 3 from a scenario: the whole day of its households (the scenario re-resolved with a window
 * from midnight), the scenario's own window shaded.
 */
export function figure3FromScenario(scenario: Scenario, title?: string): Figure3Input {
  const perDay = 1440 / scenario.file.intervalMinutes;
  const day = resolveScenario({ ...scenario.file, window: { start: "00:00", intervalCount: perDay } }, scenario.source);
  return {
    title,
    intervalMinutes: scenario.file.intervalMinutes,
    firstInterval: 0,
    households: day.households.map((h) => ({
      // Column names can repeat (case-study-9 has two 7/7): then the household's id tells them apart.
      label: day.households.filter((o) => o.column === h.column).length > 1 ? `${h.column} (${h.id})` : h.column,
      netW: Array.from({ length: perDay }, (_, k) => h.trueNetW[k] ?? 0),
    })),
    unit: "kWh",
    window: { firstInterval: scenario.firstInterval, intervalCount: scenario.intervalCount },
  };
}

/** Figure 3: per interval, generation stacked above zero and load below, one colour per household (or totals). */
export function figure3Svg(input: Figure3Input): string {
  check(input.intervalMinutes > 0 && 1440 % input.intervalMinutes === 0, "intervalMinutes", "must divide a day");
  check(input.households.length > 0, "households", "must not be empty");
  const count = Math.max(...input.households.map((h) => h.netW.length));
  check(count > 0, "households", "must have at least one interval");
  for (const h of input.households)
    check(
      h.netW.every((w) => Number.isFinite(w)),
      "households",
      `${h.label}: every netW must be a finite number`,
    );
  const unit = input.unit ?? "kWh";
  const factor = unit === "kWh" ? input.intervalMinutes / 60 / 1000 : 1 / 1000;
  // Series to stack: one per household, or two totals when there are too many to tell apart.
  const totals = input.households.length > FIGURE3_MAX_SERIES;
  const series: { label: string; color: string; values: number[] }[] = totals
    ? [
        {
          label: `generation (${input.households.length} households)`,
          color: PALETTE[4] as string,
          values: Array.from({ length: count }, (_, k) =>
            input.households.reduce((s, h) => s + Math.max(0, h.netW[k] ?? 0), 0),
          ),
        },
        {
          label: `load (${input.households.length} households)`,
          color: PALETTE[0] as string,
          values: Array.from({ length: count }, (_, k) =>
            input.households.reduce((s, h) => s + Math.min(0, h.netW[k] ?? 0), 0),
          ),
        },
      ]
    : input.households.map((h, i) => ({
        label: h.label,
        color: PALETTE[i] as string,
        values: Array.from({ length: count }, (_, k) => h.netW[k] ?? 0),
      }));
  const up = Array.from({ length: count }, (_, k) =>
    series.reduce((s, x) => s + Math.max(0, (x.values[k] as number) * factor), 0),
  );
  const down = Array.from({ length: count }, (_, k) =>
    series.reduce((s, x) => s + Math.min(0, (x.values[k] as number) * factor), 0),
  );
  const width = 960;
  const height = 540;
  const plot: Plot = { left: 80, top: 50, width: 640, height: 420 };
  const out: string[] = [];
  const title = input.title ?? `Load and generation per ${input.intervalMinutes}-minute interval`;
  out.push(text(plot.left, 28, title, { "font-size": 16 }));
  const ticks = niceTicks(Math.min(0, ...down), Math.max(0, ...up));
  const y = yAxis(
    out,
    plot,
    ticks,
    unit === "kWh" ? `kWh per ${input.intervalMinutes}-min interval` : "kW (mean over the interval)",
  );
  const slot = plot.width / count;
  const x = (k: number) => plot.left + k * slot;
  if (input.window) {
    const from = input.window.firstInterval - input.firstInterval;
    const x0 = x(Math.max(0, from));
    const x1 = x(Math.min(count, from + input.window.intervalCount));
    if (x1 > x0) {
      out.push(el("rect", { x: x0, y: plot.top, width: x1 - x0, height: plot.height, fill: "#f2f2f2" }));
      out.push(text((x0 + x1) / 2, plot.top - 6, "trading window", { "text-anchor": "middle", fill: "#666666" }));
    }
  }
  // Bars: each series' positive part stacked upwards from 0, its negative part downwards.
  const gap = slot > 4 ? 1 : 0;
  for (let k = 0; k < count; k++) {
    let pos = 0;
    let neg = 0;
    for (const s of series) {
      const v = (s.values[k] as number) * factor;
      if (v === 0) continue;
      const from = v > 0 ? pos : neg;
      const to = from + v;
      if (v > 0) pos = to;
      else neg = to;
      const yTop = y(Math.max(from, to));
      out.push(
        el("rect", {
          x: x(k) + gap / 2,
          y: yTop,
          width: slot - gap,
          height: y(Math.min(from, to)) - yTop,
          fill: s.color,
        }),
      );
    }
  }
  out.push(el("line", { x1: plot.left, y1: y(0), x2: plot.left + plot.width, y2: y(0), stroke: "#333333" }));
  frame(out, plot);
  // X axis: clock times at round hours, at most about a dozen labels.
  const perHour = 60 / input.intervalMinutes;
  const stepHours = [1, 2, 3, 4, 6, 12, 24].find((h) => count / (h * perHour) <= 12) ?? 24;
  for (let k = 0; k <= count; k++) {
    const minute = (input.firstInterval + k) * input.intervalMinutes;
    if (minute % (stepHours * 60) !== 0) continue;
    out.push(
      el("line", { x1: x(k), y1: plot.top + plot.height, x2: x(k), y2: plot.top + plot.height + 5, stroke: "#333333" }),
    );
    out.push(text(x(k), plot.top + plot.height + 18, fmtClock(minute), { "text-anchor": "middle" }));
  }
  out.push(
    text(plot.left + plot.width / 2, plot.top + plot.height + 40, "time of day (interval start)", {
      "text-anchor": "middle",
    }),
  );
  const legendX = plot.left + plot.width + 24;
  out.push(text(legendX, plot.top + 4, "generation above 0, load below", { fill: "#666666", "font-size": 11 }));
  legend(
    out,
    legendX,
    plot.top + 20,
    series.map((s) => ({ label: s.label, color: s.color })),
  );
  return svgDocument(width, height, out);
}

// ---------------------------------------------------------------------------------------------
// Figure 4

export interface Histogram {
  /** Bin edges, seconds: bin i is [edges[i], edges[i+1]), the last bin also holds its upper edge. */
  edges: number[];
  counts: number[];
}

/** Equal-width bins of `binWidth` from `start` up to the first edge at or above the largest value. */
export function histogram(values: readonly number[], binWidth: number, start = 0): Histogram {
  check(binWidth > 0 && Number.isFinite(binWidth), "binWidth", `must be a positive number, got ${binWidth}`);
  const bad = values.find((v) => !Number.isFinite(v) || v < start);
  check(bad === undefined, "values", `must be finite numbers >= ${start}, got ${bad}`);
  const max = values.length > 0 ? Math.max(...values) : start;
  const bins = Math.max(1, Math.ceil((max - start) / binWidth - 1e-9));
  const edges = Array.from({ length: bins + 1 }, (_, i) => start + i * binWidth);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    const i = Math.min(bins - 1, Math.floor((v - start) / binWidth));
    counts[i] = (counts[i] as number) + 1;
  }
  return { edges, counts };
}

/** The paper's published statistics (PAPER_CLEARING_S): seconds, variance in s^2. */
export interface PaperClearingStats {
  mean: number;
  median: number;
  p90: number;
  max: number;
  variance: number;
}

export interface Figure4Input {
  /** Clearing time of every cleared offer, seconds. */
  clearingS: readonly number[];
  paper: PaperClearingStats;
  /** Default 2 s. */
  binWidthS?: number;
  title?: string;
  /** Label of our column in the table. Default "this run". */
  ours?: string;
}

function fmtStat(v: number, published = false): string {
  if (!Number.isFinite(v)) return "-";
  return published && Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** Figure 4: histogram of clearing times, with our mean, median, p90, max, variance and n beside the paper's. */
export function figure4Svg(input: Figure4Input): string {
  const binWidthS = input.binWidthS ?? 2;
  const h = histogram(input.clearingS, binWidthS);
  const ours: Distribution = distribution(input.clearingS);
  const width = 960;
  const height = 540;
  const plot: Plot = { left: 80, top: 50, width: 560, height: 420 };
  const out: string[] = [];
  out.push(
    text(plot.left, 28, input.title ?? "Offer clearing times (postOffer sent to acceptOffer mined)", {
      "font-size": 16,
    }),
  );
  const xMax = Math.max(h.edges[h.edges.length - 1] as number, input.paper.max);
  const xTicks = niceTicks(0, xMax, 8);
  const xHi = xTicks[xTicks.length - 1] as number;
  const x = (s: number) => plot.left + (s / xHi) * plot.width;
  const y = yAxis(out, plot, niceTicks(0, Math.max(1, ...h.counts), 6), "offers");
  h.counts.forEach((c, i) => {
    if (c === 0) return;
    const x0 = x(h.edges[i] as number);
    const x1 = x(h.edges[i + 1] as number);
    out.push(el("rect", { x: x0 + 0.5, y: y(c), width: x1 - x0 - 1, height: y(0) - y(c), fill: PALETTE[0] as string }));
  });
  const marker = (s: number, color: string) => {
    if (!Number.isFinite(s)) return;
    out.push(
      el("line", {
        x1: x(s),
        y1: plot.top,
        x2: x(s),
        y2: plot.top + plot.height,
        stroke: color,
        "stroke-width": 2,
        "stroke-dasharray": "4 2",
      }),
    );
  };
  marker(ours.mean, PALETTE[1] as string);
  marker(input.paper.mean, "#555555");
  if (ours.count === 0)
    out.push(
      text(plot.left + plot.width / 2, plot.top + plot.height / 2, "no cleared offers", { "text-anchor": "middle" }),
    );
  frame(out, plot);
  for (const t of xTicks) {
    out.push(
      el("line", { x1: x(t), y1: plot.top + plot.height, x2: x(t), y2: plot.top + plot.height + 5, stroke: "#333333" }),
    );
    out.push(text(x(t), plot.top + plot.height + 18, fmtTick(t), { "text-anchor": "middle" }));
  }
  out.push(
    text(
      plot.left + plot.width / 2,
      plot.top + plot.height + 40,
      `clearing time (s), bins of ${fmtTick(binWidthS)} s`,
      {
        "text-anchor": "middle",
      },
    ),
  );
  // The statistics, ours beside the paper's.
  const tx = plot.left + plot.width + 40;
  const col1 = tx + 130;
  const col2 = tx + 230;
  let ty = plot.top + 10;
  out.push(text(col1, ty, input.ours ?? "this run", { "text-anchor": "end", "font-size": 13 }));
  out.push(text(col2, ty, "paper", { "text-anchor": "end", "font-size": 13 }));
  ty += 8;
  out.push(el("line", { x1: tx, y1: ty, x2: col2, y2: ty, stroke: "#333333" }));
  const rows: [string, string, string][] = [
    ["n (offers)", String(ours.count), "-"],
    ["mean (s)", fmtStat(ours.mean), fmtStat(input.paper.mean, true)],
    ["median (s)", fmtStat(ours.median), fmtStat(input.paper.median, true)],
    ["p90 (s)", fmtStat(ours.p90), fmtStat(input.paper.p90, true)],
    ["max (s)", fmtStat(ours.max), fmtStat(input.paper.max, true)],
    ["variance (s\u00b2)", fmtStat(ours.variance), fmtStat(input.paper.variance, true)],
  ];
  for (const [label, a, b] of rows) {
    ty += 22;
    out.push(text(tx, ty, label));
    out.push(text(col1, ty, a, { "text-anchor": "end" }));
    out.push(text(col2, ty, b, { "text-anchor": "end" }));
  }
  legend(out, tx, ty + 40, [
    { label: "clearing times", color: PALETTE[0] as string },
    { label: "mean, this run", color: PALETTE[1] as string, dashed: true },
    { label: "mean, paper", color: "#555555", dashed: true },
  ]);
  return svgDocument(width, height, out);
}

// ---------------------------------------------------------------------------------------------
// PNG

export interface Raster {
  png: Buffer;
  width: number;
  height: number;
  /** RGBA, row by row. */
  rgba: Buffer;
}

/** Renders SVG with the shipped DejaVu Sans only (no system fonts): the same SVG gives the same bytes anywhere. */
export function rasterize(svg: string): Raster {
  const image = new Resvg(svg, {
    font: { fontFiles: [FONT_FILE], loadSystemFonts: false, defaultFontFamily: FONT_FAMILY },
    fitTo: { mode: "original" },
    background: "#ffffff",
  }).render();
  return { png: image.asPng(), width: image.width, height: image.height, rgba: image.pixels };
}

/** Writes `basePath`.svg and `basePath`.png; returns both paths. */
export function writeFigure(svg: string, basePath: string): { svg: string; png: string } {
  const files = { svg: `${basePath}.svg`, png: `${basePath}.png` };
  fs.mkdirSync(path.dirname(files.svg), { recursive: true });
  fs.writeFileSync(files.svg, svg);
  fs.writeFileSync(files.png, rasterize(svg).png);
  return files;
}
