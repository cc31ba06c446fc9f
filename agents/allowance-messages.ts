import { ed25519 } from "@noble/curves/ed25519";
import { bytesToHex } from "@noble/hashes/utils";
import { z } from "zod";
import { PetraError } from "../common/errors";
import { ZK } from "../common/zk-params";
import { DEFAULT_MAX_ENVELOPE_BYTES, ENVELOPE_VERSION, randomNonceHex, type SigningKey } from "./envelope";
import { addressSchema, describeZodError, requestIdSchema } from "./messages";

/**
 * Messages between a household and the DSO's allowance desk (agents/dso-allowance-desk.ts), as one
 * closed discriminated union on `type`, and the signed envelopes they travel in.
 *
 * The envelope is agents/envelope.ts's wire format (version byte, Ed25519 signature, JSON body
 * {from, key, nonce, timestampMs, message}) with its own domain tag, so that a signature made for
 * the desk can never pass as one made for the DSO's market withdrawals, and vice versa. The same
 * long-term keys sign both (agents/household-registry.ts).
 *
 * Field elements (commitments) and money amounts that may exceed 2^53 travel as decimal strings.
 */

const safeInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const decimal = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, "must be a decimal integer string");
/** A commitment: a field element as a decimal string. Range and emptiness are the desk's policy. */
const commitmentSchema = decimal;

export const DIRECTIONS = ["consumption", "production"] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** Why the desk refused. A closed list; the free text next to it is for humans. */
export const deskRefusalReasons = [
  "MALFORMED",
  "UNSUPPORTED_VERSION",
  "UNKNOWN_KEY",
  "BAD_SIGNATURE",
  "STALE_TIMESTAMP",
  "REPLAYED_NONCE",
  "INVALID_REQUEST",
  "REQUEST_CONFLICT",
  "INVALID_COMMITMENT",
  "COMMITMENT_TAKEN",
  "WINDOW_TOO_LONG",
  "DIRECTION_DISABLED",
  "NO_SUCH_POOL",
  "OVER_PV_CAPACITY",
  "OVER_CONNECTION_LIMIT",
  "OVER_FEEDER_RATING",
  "INSUFFICIENT_BALANCE",
  "PROOF_INVALID",
  "UNKNOWN_ROOT",
  "NULLIFIER_SPENT",
  "DEPOSIT_NOT_FOUND",
  "DEPOSIT_CLAIMED",
  "BAD_KEY_CERTIFICATE",
  "CHAIN_FAILED",
  "INTERNAL_ERROR",
] as const;
export type DeskRefusalReason = (typeof deskRefusalReasons)[number];

/**
 * Household -> desk: issue an allowance of `capW` per interval over [windowStart, windowEnd] in the
 * vault for `direction`. The household sends `inner` = Poseidon(2)(secret, nullifier) and opens the
 * cap and window; the desk checks them against its limits and computes the leaf
 * Poseidon(4)(capW, windowStart, windowEnd, inner) itself (mixer/allowance.ts), so the leaf can
 * hide no other cap or window. A `commitment` field is refused (strict): the desk never inserts a
 * leaf the household computed.
 */
export const allowanceRequestSchema = z
  .object({
    type: z.literal("allowanceRequest"),
    requestId: requestIdSchema,
    direction: z.enum(DIRECTIONS),
    capW: safeInt.min(1),
    windowStart: safeInt,
    windowEnd: safeInt,
    inner: commitmentSchema,
  })
  .strict();

/** Household -> desk: pay `commitments.length` notes of `denomination` into the mixer from my account. */
export const noteDepositRequestSchema = z
  .object({
    type: z.literal("noteDepositRequest"),
    requestId: requestIdSchema,
    denomination: decimal,
    commitments: z.array(commitmentSchema).min(1).max(64),
  })
  .strict();

const txHashSchema = z.string().regex(/^0x[0-9a-f]{64}$/, "must be a 0x-prefixed 32-byte lower-case hex hash");
const hexSignatureSchema = z.string().regex(/^0x[0-9a-fA-F]{130}$/, "must be a 65-byte hex signature");

/**
 * Pseudonym -> desk: "my money went back to the DSO in `txHash` (FinancialDeposited from me, exactly
 * commitments.length x denomination); put these note commitments into the pool of `denomination`".
 * The envelope's `from` is the pseudonym's address and its Ed25519 key a one-off key the pseudonym
 * certifies with `keyCertificate`, an Ethereum signature by the pseudonym over
 * depositBackKeyText(...): so only the pseudonym can claim its deposit, and the desk learns no
 * household. The change below the smallest denomination stays on the pseudonym.
 */
export const depositBackRequestSchema = z
  .object({
    type: z.literal("depositBackRequest"),
    requestId: requestIdSchema,
    txHash: txHashSchema,
    denomination: decimal,
    commitments: z.array(commitmentSchema).min(1).max(64),
    keyCertificate: hexSignatureSchema,
  })
  .strict();

/** A Groth16 proof, as the Mixer's withdraw takes it, in decimal strings. */
const proofSchema = z
  .object({
    pA: z.tuple([decimal, decimal]),
    pB: z.tuple([z.tuple([decimal, decimal]), z.tuple([decimal, decimal])]),
    pC: z.tuple([decimal, decimal]),
  })
  .strict();

/**
 * Household -> desk: redeem a mixer note into my account. The proof is a mixer withdrawal whose
 * recipient and relayer are the DSO's address and whose fee is 0; the desk checks it, submits it
 * and, once mined, credits the note's denomination to the household. It learns that this household
 * redeemed a note of this pool, not which deposit made it.
 */
export const noteRedemptionRequestSchema = z
  .object({
    type: z.literal("noteRedemptionRequest"),
    requestId: requestIdSchema,
    pool: addressSchema,
    root: decimal,
    nullifierHash: decimal,
    proof: proofSchema,
  })
  .strict();

/** Desk -> household: the note is spent to the DSO and its denomination credited; `balance` is after the credit. */
export const noteRedeemedSchema = z
  .object({
    type: z.literal("noteRedeemed"),
    requestId: requestIdSchema,
    pool: addressSchema,
    denomination: decimal,
    nullifierHash: decimal,
    txHash: txHashSchema,
    balance: z.number().int(),
  })
  .strict();

/** Desk -> household: the allowance is in the vault's tree (mined); `commitment` is the leaf the desk computed. */
export const allowanceIssuedSchema = z
  .object({
    type: z.literal("allowanceIssued"),
    requestId: requestIdSchema,
    direction: z.enum(DIRECTIONS),
    vault: addressSchema,
    commitment: commitmentSchema,
    txHash: z.string().regex(/^0x[0-9a-f]{64}$/),
  })
  .strict();

/** Desk -> household: the notes are in the pool's tree (mined); `balance` is the account after the debit. */
export const notesDepositedSchema = z
  .object({
    type: z.literal("notesDeposited"),
    requestId: requestIdSchema,
    pool: addressSchema,
    denomination: decimal,
    commitments: z.array(commitmentSchema),
    txHashes: z.array(z.string().regex(/^0x[0-9a-f]{64}$/)),
    balance: z.number().int(),
  })
  .strict();

/** Desk -> household: refused; `requestId` is null when the desk could not read it. */
export const deskRefusedSchema = z
  .object({
    type: z.literal("deskRefused"),
    requestId: requestIdSchema.nullable(),
    reason: z.enum(deskRefusalReasons),
    message: z.string().max(2000),
  })
  .strict();

export const deskMessageSchema = z.discriminatedUnion("type", [
  allowanceRequestSchema,
  noteDepositRequestSchema,
  depositBackRequestSchema,
  noteRedemptionRequestSchema,
  allowanceIssuedSchema,
  notesDepositedSchema,
  noteRedeemedSchema,
  deskRefusedSchema,
]);

export type DeskMessage = z.infer<typeof deskMessageSchema>;
export type AllowanceRequest = z.infer<typeof allowanceRequestSchema>;
export type NoteDepositRequest = z.infer<typeof noteDepositRequestSchema>;
export type DepositBackRequest = z.infer<typeof depositBackRequestSchema>;
export type NoteRedemptionRequest = z.infer<typeof noteRedemptionRequestSchema>;
export type NoteRedeemed = z.infer<typeof noteRedeemedSchema>;
export type AllowanceIssued = z.infer<typeof allowanceIssuedSchema>;
export type NotesDeposited = z.infer<typeof notesDepositedSchema>;
export type DeskRefused = z.infer<typeof deskRefusedSchema>;
/** What the desk answers. A deposit-back is answered with notesDeposited (balance 0: a pseudonym has no account). */
export type DeskAnswer = AllowanceIssued | NotesDeposited | NoteRedeemed | DeskRefused;

/** True for an envelope `from` that names a pseudonym (an address) rather than a household. */
export function isPseudonymSender(from: string): boolean {
  return /^0x[0-9a-f]{40}$/.test(from);
}

/**
 * What a pseudonym signs (EIP-191) to let the one-off Ed25519 key `keyHex` speak for it at the desk
 * of `dso` on chain `chainId`.
 */
export function depositBackKeyText(o: { chainId: bigint | number; dso: string; keyHex: string }): string {
  return `PETra deposit-back key\nchain ${o.chainId}\ndso ${o.dso.toLowerCase()}\nkey ${o.keyHex}`;
}

/**
 * A commitment the desk can insert (or an `inner` it hashes into one): a field element, not the
 * empty value the vault skips.
 */
export function commitmentFormError(commitment: string): string | undefined {
  const c = BigInt(commitment);
  if (c === 0n || c === ZK.allowance.emptyCommitment) return "must not be 0 (the empty value)";
  if (c >= ZK.fieldModulus) return "must be below the BN254 field modulus";
  return undefined;
}

// ------------------------------------------------------------------ envelopes

const DOMAIN = new TextEncoder().encode("PETRA-ALLOWANCE-DESK-V1\0");
const SIGNATURE_BYTES = 64;
const HEADER_BYTES = 1 + SIGNATURE_BYTES;

const bodySchema = z
  .object({
    from: z.string().min(1).max(64),
    key: z.string().regex(/^[0-9a-f]{64}$/),
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
    timestampMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    message: z.unknown(),
  })
  .strict();

export interface DeskEnvelope {
  from: string;
  keyHex: string;
  nonceHex: string;
  timestampMs: number;
  message: DeskMessage;
}

export type DeskOpenResult =
  | { ok: true; envelope: DeskEnvelope }
  | { ok: false; reason: DeskRefusalReason; detail: string; requestId?: string };

/** Encodes and signs; throws INVALID_ARGUMENT naming the field when the message breaks its schema. */
export function sealDeskEnvelope(o: {
  from: string;
  key: SigningKey;
  message: DeskMessage;
  timestampMs: number;
  nonceHex?: string;
}): Uint8Array {
  const message = deskMessageSchema.safeParse(o.message);
  if (!message.success) {
    throw new PetraError("INVALID_ARGUMENT", `message: ${describeZodError(message.error)}`, { parameter: "message" });
  }
  const body = new TextEncoder().encode(
    JSON.stringify({
      from: o.from,
      key: bytesToHex(o.key.publicKey),
      nonce: o.nonceHex ?? randomNonceHex(),
      timestampMs: o.timestampMs,
      message: message.data,
    }),
  );
  const signature = ed25519.sign(concat(DOMAIN, body), o.key.secretKey);
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out[0] = ENVELOPE_VERSION;
  out.set(signature, 1);
  out.set(body, HEADER_BYTES);
  return out;
}

/**
 * Parse, known key, signature, freshness, in that order; never throws. Replay (the nonce) is the
 * caller's to check, in the same transaction as the message's effect.
 */
export function openDeskEnvelope(
  bytes: unknown,
  o: {
    nowMs: number;
    maxClockSkewMs: number;
    /** The registered key of `from`, or undefined. */
    resolveKey(from: string, keyHex: string): Uint8Array | undefined;
    maxBytes?: number;
  },
): DeskOpenResult {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  if (!(bytes instanceof Uint8Array)) return { ok: false, reason: "MALFORMED", detail: "envelope is not a byte frame" };
  if (bytes.length > maxBytes) return { ok: false, reason: "MALFORMED", detail: `envelope over ${maxBytes} bytes` };
  if (bytes.length < HEADER_BYTES + 2) return { ok: false, reason: "MALFORMED", detail: "envelope too short" };
  if (bytes[0] !== ENVELOPE_VERSION) {
    return {
      ok: false,
      reason: "UNSUPPORTED_VERSION",
      detail: `envelope version ${bytes[0]}, desk speaks ${ENVELOPE_VERSION}`,
    };
  }
  const signature = bytes.slice(1, HEADER_BYTES);
  const body = bytes.slice(HEADER_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return { ok: false, reason: "MALFORMED", detail: "envelope body is not UTF-8 JSON" };
  }
  const rawId = (json as { message?: { requestId?: unknown } })?.message?.requestId;
  const requestId = typeof rawId === "string" && requestIdSchema.safeParse(rawId).success ? rawId : undefined;
  const partial = requestId ? { requestId } : {};
  const parsed = bodySchema.safeParse(json);
  if (!parsed.success)
    return { ok: false, reason: "MALFORMED", detail: `envelope: ${describeZodError(parsed.error)}`, ...partial };
  const message = deskMessageSchema.safeParse(parsed.data.message);
  if (!message.success) {
    return { ok: false, reason: "MALFORMED", detail: `message: ${describeZodError(message.error)}`, ...partial };
  }
  const { from, key, nonce, timestampMs } = parsed.data;
  const publicKey = o.resolveKey(from, key);
  if (publicKey === undefined) {
    return {
      ok: false,
      reason: "UNKNOWN_KEY",
      detail: `no key ${key.slice(0, 16)}... registered for "${from}"`,
      ...partial,
    };
  }
  let valid = false;
  try {
    valid = ed25519.verify(signature, concat(DOMAIN, body), publicKey, { zip215: false });
  } catch {
    valid = false;
  }
  if (!valid)
    return { ok: false, reason: "BAD_SIGNATURE", detail: `signature does not verify for "${from}"`, ...partial };
  const skewMs = timestampMs - o.nowMs;
  if (Math.abs(skewMs) > o.maxClockSkewMs) {
    return {
      ok: false,
      reason: "STALE_TIMESTAMP",
      detail: `timestamp ${timestampMs} is ${skewMs} ms from now; allowed +-${o.maxClockSkewMs} ms`,
      ...partial,
    };
  }
  return { ok: true, envelope: { from, keyHex: key, nonceHex: nonce, timestampMs, message: message.data } };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
