import { hexToBytes } from "@noble/hashes/utils";
import { z } from "zod";
import { PetraError } from "../common/errors";
import { describeZodError } from "./messages";

/**
 * What the DSO knows about the grid and the households it serves: each household's long-term
 * Ed25519 public key, its feeder, PV capacity and connection limit, and each feeder's rating.
 * This is the DSO's own, non-anonymous view; it never goes on chain.
 */

const idSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, "only letters, digits and . _ -");
const wattsSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const feederSchema = z.object({ id: idSchema, ratingW: wattsSchema }).strict();

export const householdSchema = z
  .object({
    id: idSchema,
    /** Ed25519 public key, 32 bytes of lower-case hex. */
    publicKeyHex: z.string().regex(/^[0-9a-f]{64}$/, "must be 32 bytes of lower-case hex"),
    feederId: idSchema,
    pvCapacityW: wattsSchema,
    connectionLimitW: wattsSchema,
    /** Money units the account starts with the first time the account book sees the household. */
    initialBalance: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  })
  .strict();

export const registrySchema = z
  .object({
    feeders: z.array(feederSchema),
    households: z.array(householdSchema),
  })
  .strict();

export type Feeder = z.infer<typeof feederSchema>;
export type Household = z.infer<typeof householdSchema>;
export type RegistryInput = z.input<typeof registrySchema>;

export class HouseholdRegistry {
  private readonly households = new Map<string, Household>();
  private readonly byKey = new Map<string, Household>();
  private readonly feeders = new Map<string, Feeder>();
  private readonly keyBytes = new Map<string, Uint8Array>();

  /** Validates `input`; errors name the offending field (INVALID_ARGUMENT). */
  constructor(input: unknown) {
    const parsed = registrySchema.safeParse(input);
    if (!parsed.success) {
      throw new PetraError("INVALID_ARGUMENT", `registry: ${describeZodError(parsed.error)}`, {
        parameter: "registry",
      });
    }
    for (const [i, f] of parsed.data.feeders.entries()) {
      if (this.feeders.has(f.id)) throw invalid(`feeders.${i}.id`, `duplicate feeder id "${f.id}"`);
      this.feeders.set(f.id, f);
    }
    for (const [i, h] of parsed.data.households.entries()) {
      if (this.households.has(h.id)) throw invalid(`households.${i}.id`, `duplicate household id "${h.id}"`);
      if (this.byKey.has(h.publicKeyHex)) {
        throw invalid(
          `households.${i}.publicKeyHex`,
          `key already registered to "${this.byKey.get(h.publicKeyHex)?.id}"`,
        );
      }
      if (!this.feeders.has(h.feederId)) throw invalid(`households.${i}.feederId`, `unknown feeder "${h.feederId}"`);
      this.households.set(h.id, h);
      this.byKey.set(h.publicKeyHex, h);
      this.keyBytes.set(h.publicKeyHex, hexToBytes(h.publicKeyHex));
    }
  }

  household(id: string): Household | undefined {
    return this.households.get(id);
  }

  householdByKey(publicKeyHex: string): Household | undefined {
    return this.byKey.get(publicKeyHex);
  }

  /** The key bytes if `publicKeyHex` is registered to `householdId`, else undefined. */
  keyFor(householdId: string, publicKeyHex: string): Uint8Array | undefined {
    const h = this.byKey.get(publicKeyHex);
    if (h === undefined || h.id !== householdId) return undefined;
    return this.keyBytes.get(publicKeyHex);
  }

  feeder(id: string): Feeder | undefined {
    return this.feeders.get(id);
  }

  allHouseholds(): Household[] {
    return [...this.households.values()];
  }

  allFeeders(): Feeder[] {
    return [...this.feeders.values()];
  }
}

function invalid(field: string, message: string): PetraError {
  return new PetraError("INVALID_ARGUMENT", `registry.${field}: ${message}`, { parameter: `registry.${field}` });
}
