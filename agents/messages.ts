import { z } from "zod";

/**
 * Every off-chain message between a prosumer and the DSO, as one closed discriminated union on
 * `type`. These are the bodies; agents/envelope.ts wraps each in a signed, versioned envelope.
 *
 * Numbers are JSON numbers restricted to safe integers (the market's uint64 amounts and int64
 * powers never need more in this lab); asset IDs travel as decimal strings because they are
 * uint64 on chain and a future long run could pass 2^53.
 */

const safeInt = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const nonNegativeInt = safeInt.min(0);

/** An Ethereum address as 0x + 40 hex digits; the DSO normalises it to checksum case. */
export const addressSchema = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be 0x followed by 40 hex digits");

/** Chosen by the prosumer, unique per household; the DSO answers a re-sent request with the same outcome. */
export const requestIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, "only letters, digits and . _ : -");

/** One energy asset to mint: powerW > 0 is production, < 0 consumption; start..end inclusive intervals. */
export const assetRequestSchema = z
  .object({
    powerW: safeInt.refine((p) => p !== 0, "powerW must not be 0"),
    start: nonNegativeInt,
    end: nonNegativeInt,
  })
  .strict()
  .refine((a) => a.start <= a.end, { message: "start must be <= end", path: ["end"] });
export type AssetRequest = z.infer<typeof assetRequestSchema>;

/**
 * Why the DSO refused a message. A closed list so that prosumers and tests can branch on it;
 * the free text next to it is for humans.
 */
export const failureReasons = [
  "MALFORMED",
  "UNSUPPORTED_VERSION",
  "UNKNOWN_KEY",
  "BAD_SIGNATURE",
  "STALE_TIMESTAMP",
  "REPLAYED_NONCE",
  "INVALID_REQUEST",
  "REQUEST_CONFLICT",
  "ADDRESS_TAKEN",
  "OVER_PV_CAPACITY",
  "OVER_CONNECTION_LIMIT",
  "OVER_FEEDER_RATING",
  "INSUFFICIENT_BALANCE",
  "GAS_FUNDING_DISABLED",
  "MINT_FAILED",
  "INTERNAL_ERROR",
] as const;
export const failureReasonSchema = z.enum(failureReasons);
export type FailureReason = z.infer<typeof failureReasonSchema>;

/** Prosumer -> DSO: mint `assets` and `financial` money units to `anonAddress`, paid from the household's account. */
export const withdrawAssetsSchema = z
  .object({
    type: z.literal("withdrawAssets"),
    requestId: requestIdSchema,
    anonAddress: addressSchema,
    assets: z.array(assetRequestSchema).max(256),
    financial: nonNegativeInt,
    /** Ask the DSO to send gas money to `anonAddress` the first time it sees it ("dso" gas mode). */
    fundGas: z.boolean().default(false),
  })
  .strict();

/** Prosumer -> DSO: what is my account balance? */
export const balanceQuerySchema = z.object({ type: z.literal("balanceQuery"), requestId: requestIdSchema }).strict();

/** DSO -> prosumer: the request was minted (or had been minted before: same answer). */
export const withdrawalAcceptedSchema = z
  .object({
    type: z.literal("withdrawalAccepted"),
    requestId: requestIdSchema,
    anonAddress: addressSchema,
    /** IDs of the minted energy assets, in the order of the request's `assets`, as decimal strings. */
    assetIds: z.array(z.string().regex(/^[0-9]+$/)),
    financial: nonNegativeInt,
    /** Wei sent to anonAddress for gas by this request, decimal string; "0" if none. */
    gasFundedWei: z.string().regex(/^[0-9]+$/),
    /** Household balance after the debit, money units. */
    balance: safeInt,
  })
  .strict();

/** DSO -> prosumer: refused; `requestId`/`anonAddress` are null when the DSO could not read them. */
export const failedWithdrawalSchema = z
  .object({
    type: z.literal("failedWithdrawal"),
    requestId: requestIdSchema.nullable(),
    anonAddress: addressSchema.nullable(),
    reason: failureReasonSchema,
    message: z.string().max(2000),
  })
  .strict();

/** DSO -> prosumer: answer to balanceQuery. */
export const balanceReportSchema = z
  .object({
    type: z.literal("balanceReport"),
    requestId: requestIdSchema,
    householdId: z.string(),
    balance: safeInt,
    anonAddresses: z.array(addressSchema),
  })
  .strict();

export const messageSchema = z.discriminatedUnion("type", [
  withdrawAssetsSchema,
  balanceQuerySchema,
  withdrawalAcceptedSchema,
  failedWithdrawalSchema,
  balanceReportSchema,
]);

/** The parsed form (defaults applied). */
export type Message = z.infer<typeof messageSchema>;
/** The form a sender may construct (defaulted fields optional). */
export type MessageInput = z.input<typeof messageSchema>;
export type WithdrawAssets = z.infer<typeof withdrawAssetsSchema>;
export type BalanceQuery = z.infer<typeof balanceQuerySchema>;
export type WithdrawalAccepted = z.infer<typeof withdrawalAcceptedSchema>;
export type FailedWithdrawal = z.infer<typeof failedWithdrawalSchema>;
export type BalanceReport = z.infer<typeof balanceReportSchema>;

/** Messages a prosumer may send; anything else arriving at the DSO is refused. */
export type ProsumerMessage = WithdrawAssets | BalanceQuery;
/** Messages the DSO sends. */
export type DsoMessage = WithdrawalAccepted | FailedWithdrawal | BalanceReport;

export function isProsumerMessage(m: Message): m is ProsumerMessage {
  switch (m.type) {
    case "withdrawAssets":
    case "balanceQuery":
      return true;
    case "withdrawalAccepted":
    case "failedWithdrawal":
    case "balanceReport":
      return false;
    default: {
      const never: never = m;
      return never;
    }
  }
}

/** Short human text for a zod failure, naming the field paths. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}
