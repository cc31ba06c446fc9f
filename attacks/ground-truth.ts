import * as fs from "node:fs";
import { z } from "zod";
import { PetraError } from "../common/errors";

/**
 * The ground-truth file a run writes beside its ledger (never read by an attack, only by scoring).
 * Format (JSON), documented in the README:
 * {
 *   "version": 1,
 *   "seed": 1,
 *   "firstInterval": 57,          // interval index of netW[0] / occupancy[0]
 *   "households": [{
 *     "id": "F1/H3",
 *     "addresses": ["0x..", ...], // every address of the household: main and anonymous
 *     "role": "producer" | "consumer",
 *     "pvCapacityW": 30000,       // optional
 *     "netW": [ ... ],            // optional: true net production per interval, W (negative = consumption)
 *     "occupancy": [1, 0, ...]    // optional: 1 = someone at home in that interval
 *   }]
 * }
 */
const addr = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "an address");
const householdSchema = z.object({
  id: z.string().min(1),
  addresses: z.array(addr),
  role: z.enum(["producer", "consumer"]).optional(),
  pvCapacityW: z.number().nonnegative().optional(),
  netW: z.array(z.number()).optional(),
  occupancy: z.array(z.union([z.literal(0), z.literal(1)])).optional(),
});
export const groundTruthSchema = z.object({
  version: z.literal(1),
  seed: z.number().int().optional(),
  firstInterval: z.number().int().nonnegative().default(0),
  households: z.array(householdSchema),
});

export type GroundTruth = z.infer<typeof groundTruthSchema>;
export type TruthHousehold = z.infer<typeof householdSchema>;

export function parseGroundTruth(json: unknown, source = "ground truth"): GroundTruth {
  const r = groundTruthSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new PetraError("INVALID_ARGUMENT", `${source}: field "${issue?.path.join(".")}": ${issue?.message}`, {
      field: issue?.path.join("."),
    });
  }
  const seen = new Map<string, string>();
  for (const h of r.data.households) {
    for (const a of h.addresses) {
      const prev = seen.get(a.toLowerCase());
      if (prev && prev !== h.id) {
        throw new PetraError("INVALID_ARGUMENT", `${source}: address ${a} belongs to both ${prev} and ${h.id}`, {
          address: a,
        });
      }
      seen.set(a.toLowerCase(), h.id);
    }
  }
  return r.data;
}

export function readGroundTruth(file: string): GroundTruth {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `--truth: cannot read ${file} (${(e as Error).message})`, { file });
  }
  try {
    return parseGroundTruth(JSON.parse(text), file);
  } catch (e) {
    if (e instanceof SyntaxError)
      throw new PetraError("INVALID_ARGUMENT", `${file}: not JSON (${e.message})`, { file });
    throw e;
  }
}

/** address (lower case) -> household id. */
export function householdOfAddress(truth: GroundTruth): Map<string, string> {
  const m = new Map<string, string>();
  for (const h of truth.households) for (const a of h.addresses) m.set(a.toLowerCase(), h.id);
  return m;
}
