/**
 * Groth16 proving and verification for the lab's circuits. One Prover per process: it keeps the
 * wasm, zkey and verification keys in memory and snarkjs keeps its bn128 curve (and the worker
 * threads behind it) alive between proofs, so only the first proof pays the warm-up. close()
 * terminates the workers; without it a Node process that proved anything never exits.
 */
import * as fs from "node:fs";
import { artifactPaths, CIRCUITS, type CircuitName } from "../circuits/instances";
import { check, PetraError } from "../common/errors";
import { type CircuitInputs, type Groth16Proof, snarkjs, terminateCurveWorkers, type VerificationKey } from "./snarkjs";

export interface ProofResult {
  proof: Groth16Proof;
  /** Decimal strings in verifier order: the circuit's outputs, then its public inputs. */
  publicSignals: string[];
}

/** Proof points in the argument order of the generated Solidity verifiers. */
export interface SolidityProof {
  pA: [bigint, bigint];
  pB: [[bigint, bigint], [bigint, bigint]];
  pC: [bigint, bigint];
}

interface Loaded {
  wasm: Uint8Array;
  zkey: Uint8Array;
  vkey: VerificationKey;
}

export class Prover {
  private readonly loaded = new Map<CircuitName, Loaded>();
  private closed = false;

  private load(name: CircuitName): Loaded {
    check(name in CIRCUITS, "circuit", `unknown circuit "${name}"`);
    let l = this.loaded.get(name);
    if (!l) {
      const p = artifactPaths(name);
      for (const f of [p.wasm, p.zkey, p.vkey]) {
        if (!fs.existsSync(f)) {
          throw new PetraError(
            "CIRCUIT_BUILD_FAILED",
            `missing circuit artifact ${f}: run \`npm run build:circuits\``,
            { file: f },
          );
        }
      }
      l = {
        wasm: fs.readFileSync(p.wasm),
        zkey: fs.readFileSync(p.zkey),
        vkey: JSON.parse(fs.readFileSync(p.vkey, "utf8")) as VerificationKey,
      };
      this.loaded.set(name, l);
    }
    return l;
  }

  /** Loads the artifacts and builds the bn128 curve (and its workers) before the first proof. */
  async warm(name: CircuitName): Promise<void> {
    this.load(name);
    await snarkjs.curves.getCurveFromName("bn128");
  }

  async prove(name: CircuitName, inputs: CircuitInputs): Promise<ProofResult> {
    check(!this.closed, "prover", "is closed");
    const l = this.load(name);
    // Witness first, proof second, so that a false statement is told apart from a proving failure.
    const wtns: { type: "mem"; data?: Uint8Array } = { type: "mem" };
    try {
      await snarkjs.wtns.calculate(inputs, l.wasm, wtns);
    } catch (e) {
      // The witness calculator throws on the first failed constraint: the statement is false
      // (or the inputs are malformed), so there is no proof to be had.
      throw new PetraError(
        "WITNESS_INVALID",
        `${name}: the inputs do not satisfy the circuit`,
        { circuit: name, detail: String(e) },
        { cause: e },
      );
    }
    // snarkjs reads a Uint8Array as an in-memory file, so the zkey is not re-read from disk.
    return snarkjs.groth16.prove(l.zkey, wtns.data as Uint8Array);
  }

  async verify(name: CircuitName, publicSignals: readonly (string | bigint)[], proof: Groth16Proof): Promise<boolean> {
    check(!this.closed, "prover", "is closed");
    const l = this.load(name);
    const expected = CIRCUITS[name].publicInputs.length + CIRCUITS[name].publicOutputs.length;
    check(publicSignals.length === expected, "publicSignals", `must have ${expected} entries`, {
      got: publicSignals.length,
    });
    // snarkjs itself refuses public signals outside the field.
    return snarkjs.groth16.verify(
      l.vkey,
      publicSignals.map((s) => s.toString()),
      proof,
    );
  }

  /** Throws PROOF_INVALID instead of returning false, for callers that must not go on. */
  async verifyOrThrow(
    name: CircuitName,
    publicSignals: readonly (string | bigint)[],
    proof: Groth16Proof,
  ): Promise<void> {
    if (!(await this.verify(name, publicSignals, proof))) {
      throw new PetraError("PROOF_INVALID", `${name}: proof does not verify against its public signals`, {
        circuit: name,
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loaded.clear();
    await terminateCurveWorkers();
  }
}

/** snarkjs proof -> verifier arguments (note the swapped G2 coordinates the EVM precompile wants). */
export function toSolidityProof(proof: Groth16Proof): SolidityProof {
  const b = (x: string) => BigInt(x);
  const [a0, a1] = proof.pi_a as [string, string];
  const [c0, c1] = proof.pi_c as [string, string];
  const [[b00, b01], [b10, b11]] = proof.pi_b as [[string, string], [string, string]];
  return {
    pA: [b(a0), b(a1)],
    pB: [
      [b(b01), b(b00)],
      [b(b11), b(b10)],
    ],
    pC: [b(c0), b(c1)],
  };
}
