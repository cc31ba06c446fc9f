/**
 * The relayer's HTTP protocol, shared by the server (mixer/relayer.ts) and the client
 * (mixer/relayer-client.ts), and the one place that turns a withdrawal's named public values into
 * the contracts' call arguments. The public-signal array the relayer verifies comes from
 * mixer/public-signals.ts, the one place that knows the circuits' public-input layout.
 *
 *   GET  /v1/status  -> RelayerStatus: the relayer's address (which every proof must bind), its
 *                       pools, vaults and minimum fees
 *   POST /v1/relay   -> RelayRequest: one mixer withdrawal that pays the relayer, optionally an
 *                       allowance withdrawal it pays for, optionally a gas drop to the recipient
 *
 * Every answer is JSON. An error is `{"ok":false,"error":{"code","message","field"?}}` with an HTTP
 * 4xx (the request is wrong; the relayer keeps serving), 503 (the JSON-RPC node is unreachable)
 * or 500. Big numbers travel as decimal strings.
 */
import { getAddress, isAddress } from "ethers";
import { z } from "zod";
import { ZK } from "../common/zk-params";
import type { SolidityProof } from "./prover";
import { toSolidityProof } from "./prover";
import type { AllowanceWithdrawalPublic, MixerWithdrawalPublic } from "./public-signals";
import type { Groth16Proof } from "./snarkjs";

/** Why the relayer refused a request: a closed list, so clients and tests can branch on it. */
export const RELAYER_ERROR_CODES = [
  "MALFORMED_JSON",
  "INVALID_REQUEST",
  "PAYLOAD_TOO_LARGE",
  "NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "UNKNOWN_POOL",
  "UNKNOWN_VAULT",
  "WRONG_RELAYER",
  "FEE_TOO_LOW",
  "FEE_TOO_HIGH",
  "PROOF_INVALID",
  "UNKNOWN_ROOT",
  "NULLIFIER_SPENT",
  "REVERTED",
  "RPC_UNAVAILABLE",
  "INTERNAL_ERROR",
] as const;
export type RelayerErrorCode = (typeof RELAYER_ERROR_CODES)[number];

/** The HTTP status each code is answered with. */
export const HTTP_STATUS: Readonly<Record<RelayerErrorCode, number>> = {
  MALFORMED_JSON: 400,
  INVALID_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNKNOWN_POOL: 400,
  UNKNOWN_VAULT: 400,
  WRONG_RELAYER: 400,
  FEE_TOO_LOW: 402,
  FEE_TOO_HIGH: 400,
  PROOF_INVALID: 400,
  UNKNOWN_ROOT: 409,
  NULLIFIER_SPENT: 409,
  REVERTED: 422,
  RPC_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
};

export interface RelayerErrorBody {
  code: RelayerErrorCode;
  message: string;
  /** Path of the offending request field, e.g. "mixer.fee". */
  field?: string;
}

/** A refusal on its way to becoming an HTTP answer. */
export class RelayerRefusal extends Error {
  override readonly name = "RelayerRefusal";
  constructor(
    readonly code: RelayerErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  body(): { ok: false; error: RelayerErrorBody } {
    return {
      ok: false,
      error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) },
    };
  }
}

// ------------------------------------------------------------------ wire schema

const decimal = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, "must be a decimal integer string");
const field = decimal.refine((s) => BigInt(s) < ZK.fieldModulus, "must be below the BN254 field modulus");
const u64 = decimal.refine((s) => BigInt(s) < 1n << 64n, "must fit in 64 bits");
const address = z.string().refine((s) => isAddress(s), "must be an Ethereum address");

export const proofSchema = z
  .object({
    pi_a: z.array(decimal).min(2).max(3),
    pi_b: z.array(z.array(decimal).length(2)).min(2).max(3),
    pi_c: z.array(decimal).min(2).max(3),
    protocol: z.literal("groth16"),
    curve: z.literal("bn128"),
  })
  .strict();

export const mixerWithdrawalSchema = z
  .object({
    /** The Mixer pool (one per denomination). */
    pool: address,
    proof: proofSchema,
    root: field,
    nullifierHash: field,
    recipient: address,
    relayer: address,
    fee: u64,
  })
  .strict();

export const allowanceWithdrawalSchema = z
  .object({
    vault: address,
    proof: proofSchema,
    root: field,
    nullifierHash: field,
    powerW: u64,
    start: u64,
    end: u64,
    recipient: address,
    newCommitments: z.array(field).length(3),
  })
  .strict();

export const relayRequestSchema = z
  .object({
    /** Pays the relayer: its fee covers this withdrawal, the allowance (if any) and the gas drop (if asked). */
    mixer: mixerWithdrawalSchema,
    allowance: allowanceWithdrawalSchema.optional(),
    /** Ask the relayer to send its gas drop to mixer.recipient (once per address). */
    gasDrop: z.boolean().default(false),
  })
  .strict();

export type MixerWithdrawalWire = z.infer<typeof mixerWithdrawalSchema>;
export type AllowanceWithdrawalWire = z.infer<typeof allowanceWithdrawalSchema>;
export type RelayRequest = z.input<typeof relayRequestSchema>;
export type ParsedRelayRequest = z.infer<typeof relayRequestSchema>;

export interface RelayerStatus {
  ok: true;
  relayer: string;
  chainId: string;
  pools: { address: string; denomination: string }[];
  vaults: { address: string; direction: 1 | -1 }[];
  /** Minimum fees in money units, per part of a request. */
  fees: { mixer: string; allowance: string; gasDrop: string };
  /** Wei a gas drop sends; "0" = no gas drops. */
  gasDropWei: string;
}

export interface RelayedTransaction {
  kind: "mixer" | "allowance" | "gas-drop";
  hash: string;
  block: number;
  gasUsed: string;
  /** Wei per gas the relayer paid. */
  effectiveGasPrice: string;
}

export interface RelayResult {
  ok: true;
  relayer: string;
  transactions: RelayedTransaction[];
  /** The energy asset the vault minted, when the request held an allowance withdrawal. */
  assetId?: string;
  fee: string;
  gasDropWei: string;
}

// ------------------------------------------------------------------ contract calls

/** Mixer.withdraw's arguments. */
export function mixerWithdrawArgs(
  proof: Groth16Proof,
  v: MixerWithdrawalPublic,
): [SolidityProof["pA"], SolidityProof["pB"], SolidityProof["pC"], bigint, bigint, string, string, bigint] {
  const p = toSolidityProof(proof);
  return [p.pA, p.pB, p.pC, v.root, v.nullifierHash, getAddress(v.recipient), getAddress(v.relayer), v.fee];
}

/** AllowanceVault.withdraw's arguments. */
export function allowanceWithdrawArgs(
  proof: Groth16Proof,
  v: AllowanceWithdrawalPublic,
): [
  SolidityProof["pA"],
  SolidityProof["pB"],
  SolidityProof["pC"],
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  string,
  [bigint, bigint, bigint],
] {
  const p = toSolidityProof(proof);
  return [
    p.pA,
    p.pB,
    p.pC,
    v.root,
    v.nullifierHash,
    v.powerW,
    v.start,
    v.end,
    getAddress(v.recipient),
    [...v.newCommitments] as [bigint, bigint, bigint],
  ];
}

// ------------------------------------------------------------------ wire <-> values

export function mixerPublicFromWire(w: MixerWithdrawalWire): MixerWithdrawalPublic {
  return {
    root: BigInt(w.root),
    nullifierHash: BigInt(w.nullifierHash),
    recipient: getAddress(w.recipient),
    relayer: getAddress(w.relayer),
    fee: BigInt(w.fee),
  };
}

export function allowancePublicFromWire(w: AllowanceWithdrawalWire): AllowanceWithdrawalPublic {
  return {
    root: BigInt(w.root),
    nullifierHash: BigInt(w.nullifierHash),
    powerW: BigInt(w.powerW),
    start: BigInt(w.start),
    end: BigInt(w.end),
    recipient: getAddress(w.recipient),
    newCommitments: w.newCommitments.map((c) => BigInt(c)) as unknown as readonly [bigint, bigint, bigint],
  };
}

export function mixerWithdrawalWire(pool: string, proof: Groth16Proof, v: MixerWithdrawalPublic): MixerWithdrawalWire {
  return {
    pool: getAddress(pool),
    proof: wireProof(proof),
    root: v.root.toString(),
    nullifierHash: v.nullifierHash.toString(),
    recipient: getAddress(v.recipient),
    relayer: getAddress(v.relayer),
    fee: v.fee.toString(),
  };
}

export function allowanceWithdrawalWire(
  vault: string,
  proof: Groth16Proof,
  v: AllowanceWithdrawalPublic,
): AllowanceWithdrawalWire {
  return {
    vault: getAddress(vault),
    proof: wireProof(proof),
    root: v.root.toString(),
    nullifierHash: v.nullifierHash.toString(),
    powerW: v.powerW.toString(),
    start: v.start.toString(),
    end: v.end.toString(),
    recipient: getAddress(v.recipient),
    newCommitments: v.newCommitments.map(String),
  };
}

function wireProof(p: Groth16Proof): z.infer<typeof proofSchema> {
  return { pi_a: p.pi_a, pi_b: p.pi_b, pi_c: p.pi_c, protocol: "groth16", curve: "bn128" };
}
