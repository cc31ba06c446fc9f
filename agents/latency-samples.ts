/**
 * Measured latencies as samples, for the simulated mode to replay (analysis/bench-tor.ts writes
 * them to bench/latency/<mode>.json for 0 ms and <mode>-hop<D>ms.json for a per-hop delay of D ms).
 *
 *   {"kind":"petra-latency-samples","version":1,"mode":"tor-onion","perHopDelayMs":0,"seed":1,
 *    "config":{...},"measuredAt":"2026-...Z",
 *    "rpcMs":[...],           one JSON-RPC round trip each (keep-alive stream, small request)
 *    "zmqRoundTripMs":[...],  optional: DEALER -> ROUTER -> DEALER through the transport, answered at once
 *    "bootstrapS":[...],      Tor network start to usable (empty for direct: nothing to bootstrap)
 *    "clearingS":[...]}       offer clearing times of live runs: postOffer sent -> acceptOffer mined
 *
 * Every array holds raw samples in measurement order, never summaries. readLatencySamples rejects a
 * file that does not fit, naming the field.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { PetraError } from "../common/errors";

export const LATENCY_MODES = ["direct", "tor-exit", "tor-onion"] as const;
export type LatencyMode = (typeof LATENCY_MODES)[number];

const samples = (what: string) =>
  z.array(z.number().finite(`each ${what} sample must be a finite number`).min(0, `${what} samples must be >= 0`));

export const latencySamplesSchema = z
  .object({
    kind: z.literal("petra-latency-samples"),
    version: z.literal(1),
    mode: z.enum(LATENCY_MODES),
    /** One-way delay added on every link (delay proxies), ms. */
    perHopDelayMs: z.number().finite().min(0),
    /** Seed of the live runs the clearing times come from. */
    seed: z.number().int().min(0),
    /** How the samples were taken: network, scenario, block time, machine. */
    config: z.record(z.string(), z.unknown()),
    measuredAt: z.string().datetime({ message: "must be an ISO 8601 UTC time" }),
    rpcMs: samples("rpcMs").min(1, "needs at least one sample"),
    zmqRoundTripMs: samples("zmqRoundTripMs").min(1, "needs at least one sample when present").optional(),
    bootstrapS: samples("bootstrapS"),
    clearingS: samples("clearingS").min(1, "needs at least one sample"),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.mode !== "direct" && v.bootstrapS.length === 0) {
      ctx.addIssue({ code: "custom", path: ["bootstrapS"], message: `needs at least one sample for mode ${v.mode}` });
    }
  });

export type LatencySamples = z.infer<typeof latencySamplesSchema>;

/** Validates a parsed file; INVALID_ARGUMENT naming `source` and the offending field otherwise. */
export function parseLatencySamples(json: unknown, source = "latency samples"): LatencySamples {
  const parsed = latencySamplesSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join(".") : "(root)";
    throw new PetraError("INVALID_ARGUMENT", `${source}: ${field}: ${issue?.message ?? "invalid"}`, {
      parameter: field,
      source,
      issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`),
    });
  }
  return parsed.data;
}

/** Reads and validates one bench/latency/*.json file. */
export function readLatencySamples(file: string): LatencySamples {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `${file}: cannot read as JSON: ${(e as Error).message}`, {
      parameter: "file",
      file,
    });
  }
  return parseLatencySamples(json, file);
}

/** The file name for a mode and per-hop delay: "tor-onion.json", "tor-onion-hop20ms.json". */
export function latencySamplesFileName(mode: LatencyMode, perHopDelayMs: number): string {
  return perHopDelayMs === 0 ? `${mode}.json` : `${mode}-hop${perHopDelayMs}ms.json`;
}

/** Validates, then writes `samples` to dir/<file name>; returns the path. */
export function writeLatencySamples(dir: string, value: LatencySamples): string {
  const checked = parseLatencySamples(value, "samples to write");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, latencySamplesFileName(checked.mode, checked.perHopDelayMs));
  fs.writeFileSync(file, `${JSON.stringify(checked)}\n`);
  return file;
}
