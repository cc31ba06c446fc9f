import { z } from "zod";
import { MAX_RACE_BACKOFF } from "./prosumer";

/**
 * Trading options of the paper's prosumer as configuration files spell them: a scenario's
 * `prosumer` section (analysis/scenario.ts) and a prosumer process's config
 * (agents/prosumer-process.ts) read them with these schemas, so the two cannot drift apart.
 */

/**
 * How a consumer picks among usable asks: "lowest-id" is the paper's first come, first served;
 * "random" spreads hundreds of consumers over the asks (agents/strategy-paper.ts).
 */
export const offerChoiceSchema = z
  .enum(["lowest-id", "random"], { message: 'must be "lowest-id" or "random"' })
  .default("lowest-id");

/**
 * After a consumer's accept loses a race (another household took the ask first), its asset sits
 * out a uniformly random 0 to 2^min(losses, raceBackoff) - 1 blocks before it tries again, losses
 * counting that asset's lost races in a row. 0 is the paper's agent, which retries at the next
 * block: with hundreds of consumers and a few asks, nearly every accept then reverts
 * (agents/prosumer.ts).
 */
export const raceBackoffSchema = z.number().int().min(0).max(MAX_RACE_BACKOFF).default(0);
