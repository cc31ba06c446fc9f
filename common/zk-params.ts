/**
 * Typed view of common/zk-constants.json, the single source of the zero-knowledge constants. The
 * circuit build reads the same JSON to generate the circuit mains and ZkConstants.sol, so nothing
 * here may be redefined elsewhere: import it. (Not named zk-constants.ts: Node would resolve
 * `require("./zk-constants")` to the JSON first.)
 */
import raw from "./zk-constants.json";

export interface ZkConstants {
  /** BN254 scalar field: every signal, leaf and public input lives below it. */
  readonly fieldModulus: bigint;
  /** Maximum depth of the LeanIMT trees: 2^treeDepth leaves per tree. */
  readonly treeDepth: number;
  /** How many recent roots a contract accepts (Tornado Cash keeps 30). */
  readonly rootHistorySize: number;
  /** Bit width of powers, intervals and money amounts (the market's uint64). */
  readonly valueBits: number;
  readonly mixer: { readonly denominations: readonly bigint[]; readonly commitmentDomain: bigint };
  readonly allowance: { readonly emptyCommitment: bigint };
}

export const ZK: ZkConstants = Object.freeze({
  fieldModulus: BigInt(raw.fieldModulus),
  treeDepth: raw.treeDepth,
  rootHistorySize: raw.rootHistorySize,
  valueBits: raw.valueBits,
  mixer: Object.freeze({
    denominations: Object.freeze(raw.mixer.denominations.map((d) => BigInt(d))),
    commitmentDomain: BigInt(raw.mixer.commitmentDomain),
  }),
  allowance: Object.freeze({ emptyCommitment: BigInt(raw.allowance.emptyCommitment) }),
});
