import * as fs from "node:fs";
import * as path from "node:path";
import { check, PetraError } from "../../common/errors";
import type { Rng } from "../../common/rng";

/**
 * A random duration in ms: a block time, or a message's or RPC call's latency. Simulated mode
 * draws every delay from one of these, with an Rng forked from the run's seed.
 */
export interface Delay {
  /** The spec it was parsed from, normalised: goes into config.json. */
  readonly spec: string;
  /** Mean in ms (of the samples, for an empirical distribution). */
  readonly meanMs: number;
  sample(rng: Rng): number;
}

/**
 * Parses a delay spec:
 * - `constant:MS` (alias `fixed:MS`): always MS;
 * - `exp:MEAN`: exponential, as PoW block times (the paper's geth);
 * - `uniform:MIN:MAX`;
 * - `normal:MEAN:SD`, truncated at 0;
 * - `lognormal:MEDIAN:SIGMA`: a heavy right tail, as network latencies have;
 * - `samples:FILE[:FIELD]`: draws uniformly from measured samples. FILE is a JSON array of
 *   numbers, a JSON object with a numeric array under FIELD (e.g. a live run's latency file,
 *   bench/latency/*.json, FIELD rpcMs), or text with one number per line (a CSV column: FIELD
 *   names it). `scale` multiplies samples (e.g. 0.5 for a one-way delay from round trips, 1000 for
 *   seconds to ms).
 */
export function parseDelay(spec: string, parameter: string, opts: { baseDir?: string; scale?: number } = {}): Delay {
  check(typeof spec === "string" && spec.length > 0, parameter, "must be a delay spec such as exp:5000");
  const [kind, ...args] = spec.split(":");
  const nums = (n: number) => {
    check(
      args.length === n && args.every((a) => a !== "" && Number.isFinite(Number(a)) && Number(a) >= 0),
      parameter,
      `"${spec}": ${kind} takes ${n} non-negative number(s)`,
    );
    return args.map(Number);
  };
  switch (kind) {
    case "constant":
    case "fixed": {
      const [ms] = nums(1) as [number];
      return { spec: `constant:${ms}`, meanMs: ms, sample: () => ms };
    }
    case "exp": {
      const [mean] = nums(1) as [number];
      check(mean > 0, parameter, `"${spec}": the mean must be > 0`);
      return { spec: `exp:${mean}`, meanMs: mean, sample: (rng) => rng.exponential(mean) };
    }
    case "uniform": {
      const [lo, hi] = nums(2) as [number, number];
      check(hi >= lo, parameter, `"${spec}": MAX must be >= MIN`);
      return { spec: `uniform:${lo}:${hi}`, meanMs: (lo + hi) / 2, sample: (rng) => lo + (hi - lo) * rng.next() };
    }
    case "normal": {
      const [mean, sd] = nums(2) as [number, number];
      return { spec: `normal:${mean}:${sd}`, meanMs: mean, sample: (rng) => Math.max(0, rng.normal(mean, sd)) };
    }
    case "lognormal": {
      const [median, sigma] = nums(2) as [number, number];
      check(median > 0, parameter, `"${spec}": the median must be > 0`);
      const mu = Math.log(median);
      return {
        spec: `lognormal:${median}:${sigma}`,
        meanMs: Math.exp(mu + (sigma * sigma) / 2),
        sample: (rng) => Math.exp(rng.normal(mu, sigma)),
      };
    }
    case "samples": {
      check(args.length >= 1 && (args[0] ?? "") !== "", parameter, `"${spec}": samples:FILE[:FIELD]`);
      const file = path.resolve(opts.baseDir ?? process.cwd(), args[0] as string);
      const field = args[1];
      const scale = opts.scale ?? 1;
      const values = readSamples(file, field, parameter).map((v) => v * scale);
      const mean = values.reduce((s, v) => s + v, 0) / values.length;
      return {
        spec: `samples:${args.join(":")}${scale !== 1 ? ` x${scale}` : ""} (n=${values.length})`,
        meanMs: mean,
        sample: (rng) => values[Math.floor(rng.next() * values.length)] as number,
      };
    }
    default:
      throw new PetraError(
        "INVALID_ARGUMENT",
        `${parameter}: unknown delay kind "${kind}" in "${spec}"; use constant, exp, uniform, normal, lognormal or samples`,
        { parameter },
      );
  }
}

function readSamples(file: string, field: string | undefined, parameter: string): number[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new PetraError(
      "INVALID_ARGUMENT",
      `${parameter}: cannot read samples file ${file}: ${(e as Error).message}`,
      {
        parameter,
      },
    );
  }
  let values: unknown;
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new PetraError("INVALID_ARGUMENT", `${parameter}: ${file} is not valid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(json)) values = json;
    else {
      check(field !== undefined, parameter, `${file} is a JSON object: name the array, samples:FILE:FIELD`);
      values = (json as Record<string, unknown>)[field as string];
      check(Array.isArray(values), parameter, `${file} has no array field "${field}"`);
    }
  } else {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
    let column = 0;
    if (lines.length > 0 && !Number.isFinite(Number((lines[0] as string).split(",")[0]))) {
      const header = (lines.shift() as string).split(",").map((h) => h.trim());
      column = field === undefined ? 0 : header.indexOf(field);
      check(column >= 0, parameter, `${file} has no column "${field}" (columns: ${header.join(", ")})`);
    }
    values = lines.map((l) => Number(l.split(",")[column]));
  }
  const arr = values as unknown[];
  const bad = arr.findIndex((v) => typeof v !== "number" || !Number.isFinite(v) || v < 0);
  check(bad < 0, parameter, `${file}: sample ${bad} is not a non-negative number (${JSON.stringify(arr[bad])})`);
  check(arr.length > 0, parameter, `${file}: no samples`);
  return arr as number[];
}
