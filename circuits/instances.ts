/**
 * The circuit instances: the one table the build, the prover and the tests read. Template
 * parameters come from common/zk-constants.json, never literals, so the tree depth cannot drift
 * between circuit, contract and TypeScript.
 */
import * as path from "node:path";
import { ZK } from "../common/zk-params";

export type CircuitName = "mixer-withdraw" | "allowance-withdraw";

export interface CircuitInstance {
  readonly name: CircuitName;
  /** Library file under circuits/ holding the template. */
  readonly file: string;
  readonly template: string;
  readonly params: readonly (number | bigint)[];
  /** Public inputs in the order the verifier sees them (after the circuit's outputs). */
  readonly publicInputs: readonly string[];
  /** Public outputs, first in the verifier's public signal array. */
  readonly publicOutputs: readonly string[];
  /** Name of the generated Solidity verifier contract (contracts/verifiers/<name>.sol). */
  readonly verifierContract: string;
}

export const CIRCUITS: Readonly<Record<CircuitName, CircuitInstance>> = {
  "mixer-withdraw": {
    name: "mixer-withdraw",
    file: "mixer-withdraw.circom",
    template: "MixerWithdraw",
    params: [ZK.treeDepth, ZK.mixer.commitmentDomain],
    /** extDataHash = keccak256(abi.encode(recipient, relayer, fee)) mod p: mixer/public-signals.ts. */
    publicInputs: ["root", "nullifierHash", "extDataHash"],
    publicOutputs: [],
    verifierContract: "MixerWithdrawVerifier",
  },
  "allowance-withdraw": {
    name: "allowance-withdraw",
    file: "allowance-withdraw.circom",
    template: "AllowanceWithdraw",
    params: [ZK.treeDepth, ZK.valueBits],
    publicInputs: ["root", "nullifierHash", "powerW", "start", "end", "recipient"],
    publicOutputs: ["newCommitments[0]", "newCommitments[1]", "newCommitments[2]"],
    verifierContract: "AllowanceWithdrawVerifier",
  },
};

/** Committed build outputs (wasm, zkey, vkey, manifest): what provers and tests load. Not named
 * "artifacts": the repository ignores every directory of that name (Hardhat's output). */
export const ARTIFACTS_DIR = path.join(__dirname, "compiled");

export function artifactPaths(name: CircuitName): { wasm: string; zkey: string; vkey: string } {
  return {
    wasm: path.join(ARTIFACTS_DIR, `${name}.wasm`),
    zkey: path.join(ARTIFACTS_DIR, `${name}.zkey`),
    vkey: path.join(ARTIFACTS_DIR, `${name}.vkey.json`),
  };
}
