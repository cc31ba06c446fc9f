/**
 * Allowances (withdrawal limits): a per-interval cap in watts over a window of trading intervals,
 * committed as N = Poseidon(4)(capW, windowStart, windowEnd, inner) in the vault's tree, where
 * inner = Poseidon(2)(secret, nullifier). The household hands the DSO only `inner`; the DSO
 * computes N from the cap and window it approved (allowanceLeaf), so it knows what every issued
 * leaf allows without learning secret or nullifier. Withdrawing (powerW, start, end) spends one and
 * leaves up to three parts (see circuits/allowance-withdraw.circom); this file computes them and
 * wires the circuit inputs.
 */
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { check } from "../common/errors";
import { ZK } from "../common/zk-params";
import type { MerkleProofInputs } from "./merkle-tree";
import type { Poseidon } from "./poseidon";
import type { CircuitInputs } from "./snarkjs";

export interface Allowance {
  readonly capW: bigint;
  readonly windowStart: bigint;
  readonly windowEnd: bigint;
  readonly secret: bigint;
  readonly nullifier: bigint;
}

export interface EnergyRequest {
  readonly powerW: bigint;
  readonly start: bigint;
  readonly end: bigint;
  /** The fresh anonymous address the vault mints to, as a field element (uint160). */
  readonly recipient: bigint;
}

/** The three parts a withdrawal leaves: [same window remainder, before, after]; null = empty. */
export type AllowanceParts = readonly [Allowance | null, Allowance | null, Allowance | null];

/** Poseidon(2)(secret, nullifier): what the household sends the DSO's desk. */
export function allowanceInner(poseidon: Poseidon, a: Pick<Allowance, "secret" | "nullifier">): bigint {
  return poseidon([a.secret, a.nullifier]);
}

/** The leaf for an approved cap and window: what the desk computes from a household's `inner`. */
export function allowanceLeaf(
  poseidon: Poseidon,
  approved: { capW: bigint; windowStart: bigint; windowEnd: bigint },
  inner: bigint,
): bigint {
  return poseidon([approved.capW, approved.windowStart, approved.windowEnd, inner]);
}

export function allowanceCommitment(poseidon: Poseidon, a: Allowance | null): bigint {
  if (a === null) return ZK.allowance.emptyCommitment;
  return allowanceLeaf(poseidon, a, allowanceInner(poseidon, a));
}

export function allowanceNullifierHash(poseidon: Poseidon, a: Allowance): bigint {
  return poseidon([a.nullifier]);
}

/** 31 random bytes, below the field modulus by construction. */
export function freshSecret(randomBytes: (n: number) => Uint8Array = (n) => nodeRandomBytes(n)): bigint {
  return BigInt(`0x${Buffer.from(randomBytes(31)).toString("hex")}`);
}

const U64_MAX = (1n << BigInt(ZK.valueBits)) - 1n;

/**
 * The parts left after withdrawing `request` from `a`, with fresh secrets. Refuses a request the
 * circuit would refuse, so callers learn why before paying for a proof.
 */
export function splitAllowance(
  a: Allowance,
  request: Omit<EnergyRequest, "recipient">,
  randomBytes?: (n: number) => Uint8Array,
): AllowanceParts {
  const { powerW, start, end } = request;
  for (const [name, v] of Object.entries({ powerW, start, end })) {
    check(typeof v === "bigint" && v >= 0n && v <= U64_MAX, name, `must be a ${ZK.valueBits}-bit unsigned bigint`);
  }
  check(powerW >= 1n && powerW <= a.capW, "powerW", `must be in [1, ${a.capW}] (the allowance cap)`, {
    powerW,
    capW: a.capW,
  });
  check(start <= end, "start", "must not be after end", { start, end });
  check(
    start >= a.windowStart && end <= a.windowEnd,
    "start",
    `[start, end] must lie within [${a.windowStart}, ${a.windowEnd}]`,
    {
      start,
      end,
    },
  );
  const fresh = () => ({ secret: freshSecret(randomBytes), nullifier: freshSecret(randomBytes) });
  return [
    powerW === a.capW ? null : { capW: a.capW - powerW, windowStart: start, windowEnd: end, ...fresh() },
    start === a.windowStart ? null : { capW: a.capW, windowStart: a.windowStart, windowEnd: start - 1n, ...fresh() },
    end === a.windowEnd ? null : { capW: a.capW, windowStart: end + 1n, windowEnd: a.windowEnd, ...fresh() },
  ];
}

/**
 * Circuit inputs for allowance-withdraw. No semantic checks here on purpose: tests use it to ask
 * the circuit for statements it must refuse. An empty part still needs some inner input; the
 * circuit ignores it, so 0 is used.
 */
export function allowanceWithdrawInputs(
  a: Allowance,
  proof: MerkleProofInputs,
  request: EnergyRequest,
  parts: AllowanceParts,
  nullifierHash: bigint,
  poseidon: Poseidon,
): CircuitInputs {
  return {
    root: proof.root,
    nullifierHash,
    powerW: request.powerW,
    start: request.start,
    end: request.end,
    recipient: request.recipient,
    capW: a.capW,
    windowStart: a.windowStart,
    windowEnd: a.windowEnd,
    secret: a.secret,
    nullifier: a.nullifier,
    depth: proof.depth,
    leafIndex: proof.leafIndex,
    siblings: proof.siblings,
    newInners: parts.map((p) => (p ? allowanceInner(poseidon, p) : 0n)),
  };
}
