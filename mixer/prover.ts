/**
 * Groth16 proving and verification for the lab's circuits. One Prover per process keeps
 * everything a proof needs warm between proofs: the zkey and verification keys in memory, one
 * witness calculator per circuit (the circuit's wasm compiled and instantiated once; snarkjs'
 * wtns.calculate and fullProve redo that on every call), and snarkjs' bn128 curve with its worker
 * threads (one per core), and the native multi-exponentiation process (msm below). So only the
 * first proof of a circuit pays the warm-up. close() terminates the workers and stops the native
 * process; without it a Node process that proved anything never exits.
 *
 * The proof itself is mixer/groth16-prover.ts (snarkjs' algorithm on its curve and workers, from
 * a zkey parsed once). Where a warm proof's time goes (mixer-withdraw, 5,375 constraints, 2 shared
 * cores): five multi-exponentiations over ~5.4k bases each (A, B1, C and H in G1, B in G2) ~830 ms
 * of worker time in wasm, ~640 ms with precomputeBases; six 2^13-point FFTs ~80 ms; the witness
 * ~10 ms; the QAP evaluation ~4 ms. msm: "native" (the default where gcc is found) does the
 * multi-exponentiations and FFTs in C, ~3-4x less time. analysis/bench-zk.ts measures cold and
 * warm proofs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { artifactPaths, CIRCUITS, type CircuitName } from "../circuits/instances";
import { check, isError, PetraError } from "../common/errors";
import {
  addBaseTables,
  addNativeBases,
  type Bn128Curve,
  type ProvingKey,
  parseProvingKey,
  proveGroth16,
} from "./groth16-prover";
import { NativeMsm } from "./native-msm";
import { addressFromField, withdrawalPublicSignals } from "./public-signals";
import {
  buildWitnessCalculator,
  type CircuitInputs,
  type Groth16Proof,
  snarkjs,
  terminateCurveWorkers,
  type VerificationKey,
  type WitnessCalculator,
} from "./snarkjs";

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
  /** Built on first use; dropped after a failed witness, so a wasm instance left mid-run is never reused. */
  witness?: Promise<WitnessCalculator>;
  /** The zkey parsed once (and its base tables built, if asked for), on first use. */
  key?: Promise<ProvingKey>;
}

export interface ProverOptions {
  /**
   * Precompute fixed-base tables for the multi-exponentiations: a faster warm proof for memory
   * and warm-up (the first proof or warm() builds them): natively ~40 MB per circuit and ~1-3 s,
   * in wasm ~45 MB and 5-20 s. For long-lived provers (relayers, agents); default false, which is
   * what short-lived ones such as tests want.
   */
  precomputeBases?: boolean;
  /**
   * "workers" (default): snarkjs' shared curve with one worker thread per core. "single": a curve
   * of this Prover's own that computes on the calling thread, for many processes proving at once
   * (a live zk run's household processes), each of which would otherwise start a worker per core
   * to compete for the same cores; it blocks the event loop for the length of a proof.
   * Verification always uses snarkjs' shared curve.
   */
  threads?: "workers" | "single";
  /**
   * Where the five multi-exponentiations and the six FFTs run. "native": a C program
   * (mixer/native/msm.c) that gcc compiles on first use into node_modules/.cache/petra-msm/, run as
   * one child process per Prover with as many threads as cores ("workers") or one ("single"); a
   * warm proof ~3-4x faster than "wasm", cold ones faster too. "wasm": ffjavascript's worker
   * threads, as snarkjs does it. Default: "native" where it builds, else "wasm" with a one-line
   * notice on stderr; an explicit "native" that cannot be built (no gcc) is an error. A native
   * process that dies fails its requests in flight with PROCESS_FAILED naming its pid and signal;
   * prove() then retries once on a new process and throws that error if the new one dies too.
   */
  msm?: "native" | "wasm";
}

type Curve = Bn128Curve & { tm: { concurrency: number }; terminate(): Promise<void> };
let curveInFlight: Promise<Curve> | undefined;
/** The fallback notice is printed once per process, not once per Prover. */
let nativeFallbackNoticed = false;

/**
 * snarkjs' bn128 curve: one per process (globalThis.curve_bn128, with its worker threads) until
 * terminateCurveWorkers. Concurrent first calls share one build: two builds would both start
 * workers, the global would keep only the second, and the first one's workers would keep the
 * process alive for ever.
 */
function bn128(): Promise<Curve> {
  const existing = (globalThis as { curve_bn128?: Curve | null }).curve_bn128;
  if (existing) return Promise.resolve(existing);
  curveInFlight ??= (snarkjs.curves.getCurveFromName("bn128") as unknown as Promise<Curve>).finally(() => {
    curveInFlight = undefined;
  });
  return curveInFlight;
}

/**
 * Circuit inputs as the circuit takes them. For mixer-withdraw a caller may name the withdrawal's
 * external data (recipient, relayer, fee: what Mixer.withdraw takes) instead of its hash; the
 * hash then comes from withdrawalPublicSignals, the one function that lays out public signals.
 */
function circuitInputs(name: CircuitName, inputs: CircuitInputs): CircuitInputs {
  if (name !== "mixer-withdraw" || !("recipient" in inputs || "relayer" in inputs || "fee" in inputs)) return inputs;
  check(!("extDataHash" in inputs), "inputs", "give either extDataHash or recipient, relayer and fee, not both");
  const { recipient, relayer, fee, ...rest } = inputs;
  const scalar = (v: CircuitInputs[string] | undefined, parameter: string): bigint | string | number => {
    check(v !== undefined && !Array.isArray(v), `inputs.${parameter}`, "must be a single value");
    return v as bigint | string | number;
  };
  const signals = withdrawalPublicSignals("mixer-withdraw", {
    root: BigInt(scalar(rest.root, "root")),
    nullifierHash: BigInt(scalar(rest.nullifierHash, "nullifierHash")),
    recipient: addressFromField(scalar(recipient, "recipient"), "inputs.recipient"),
    relayer: addressFromField(scalar(relayer, "relayer"), "inputs.relayer"),
    fee: BigInt(scalar(fee, "fee")),
  });
  const named = Object.fromEntries(CIRCUITS[name].publicInputs.map((n, i) => [n, signals[i] as bigint]));
  return { ...rest, ...named };
}

export class Prover {
  private readonly loaded = new Map<CircuitName, Loaded>();
  private closed = false;
  private readonly precomputeBases: boolean;
  private readonly singleThread: boolean;
  private readonly msmOption: "native" | "wasm" | undefined;
  private ownCurve?: Promise<Curve>;
  private nativeMsm?: Promise<NativeMsm | undefined>;

  constructor(options: ProverOptions = {}) {
    this.precomputeBases = options.precomputeBases ?? false;
    check(
      options.msm === undefined || options.msm === "native" || options.msm === "wasm",
      "msm",
      'must be "native" or "wasm"',
      { msm: options.msm },
    );
    this.msmOption = options.msm;
    check(
      options.threads === undefined || options.threads === "workers" || options.threads === "single",
      "threads",
      'must be "workers" or "single"',
      { threads: options.threads },
    );
    this.singleThread = options.threads === "single";
  }

  /** The curve proofs are computed on: snarkjs' shared one with workers, or this Prover's own single-threaded one. */
  private curve(): Promise<Curve> {
    if (!this.singleThread) return bn128();
    this.ownCurve ??= snarkjs.curves.getCurveFromName("bn128", { singleThread: true }) as unknown as Promise<Curve>;
    return this.ownCurve;
  }

  /**
   * This Prover's native multi-exponentiation process, started on first use; undefined when
   * proving with wasm (asked for, or the default and native cannot be built).
   */
  private native(): Promise<NativeMsm | undefined> {
    if (this.msmOption === "wasm") return Promise.resolve(undefined);
    this.nativeMsm ??= NativeMsm.start(this.singleThread ? 1 : os.availableParallelism()).catch((e: unknown) => {
      if (this.msmOption === "native") {
        // Not cached: a later call tries again (after gcc was installed, say).
        this.nativeMsm = undefined;
        throw e;
      }
      if (!nativeFallbackNoticed) {
        nativeFallbackNoticed = true;
        process.stderr.write(`petra: proving with wasm multi-exponentiations: ${(e as Error).message}\n`);
      }
      return undefined;
    });
    return this.nativeMsm;
  }

  /** "native" or "wasm": where this Prover's multi-exponentiations run (starts the native process if needed). */
  async msmBackend(): Promise<"native" | "wasm"> {
    check(!this.closed, "prover", "is closed");
    return (await this.native()) ? "native" : "wasm";
  }

  /** The native process' pid, if one is running (for tests and diagnostics). */
  async nativePid(): Promise<number | undefined> {
    check(!this.closed, "prover", "is closed");
    return (await this.native())?.pid;
  }

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

  private witnessCalculator(l: Loaded): Promise<WitnessCalculator> {
    l.witness ??= buildWitnessCalculator(l.wasm);
    return l.witness;
  }

  private provingKey(l: Loaded): Promise<ProvingKey> {
    l.key ??= (async () => {
      const key = parseProvingKey(l.zkey);
      const native = await this.native();
      if (native) {
        await addNativeBases(key, native, this.precomputeBases);
      } else if (this.precomputeBases) {
        const curve = await this.curve();
        await addBaseTables(curve, key, curve.tm.concurrency);
      }
      return key;
    })().catch((e: unknown) => {
      l.key = undefined;
      throw e;
    });
    return l.key;
  }

  /** Loads the artifacts, parses the zkey, builds the witness calculator and the bn128 curve (and its workers). */
  async warm(name: CircuitName): Promise<void> {
    check(!this.closed, "prover", "is closed");
    const l = this.load(name);
    await Promise.all([this.witnessCalculator(l), this.provingKey(l), this.curve()]);
  }

  /**
   * A proof of `inputs` (circuit inputs by signal name; see circuitInputs for mixer-withdraw's
   * recipient, relayer and fee). ProofResult.publicSignals is in verifier order.
   */
  async prove(name: CircuitName, inputs: CircuitInputs): Promise<ProofResult> {
    check(!this.closed, "prover", "is closed");
    const l = this.load(name);
    const full = circuitInputs(name, inputs);
    // Witness first, proof second, so that a false statement is told apart from a proving failure.
    let wtns: Uint8Array;
    try {
      wtns = await (await this.witnessCalculator(l)).calculateWTNSBin(full);
    } catch (e) {
      l.witness = undefined;
      // The witness calculator throws on the first failed constraint: the statement is false
      // (or the inputs are malformed), so there is no proof to be had.
      throw new PetraError(
        "WITNESS_INVALID",
        `${name}: the inputs do not satisfy the circuit`,
        { circuit: name, detail: String(e) },
        { cause: e },
      );
    }
    const curve = await this.curve();
    const key = await this.provingKey(l);
    try {
      return await proveGroth16(curve, key, wtns);
    } catch (e) {
      // The native process died under this proof (killed, out of memory) or just before it (the
      // request went down the pipe before its exit was seen). The next request starts a new one
      // with the bases, so one retry proves; a process that dies again is a real failure.
      if (!isError(e, "PROCESS_FAILED") || !key.h.native || this.closed) throw e;
      return proveGroth16(curve, key, wtns);
    }
  }

  /**
   * Whether `proof` verifies against `publicSignals` in verifier order: build them with
   * withdrawalPublicSignals (mixer/public-signals.ts) from a withdrawal's named values.
   */
  async verify(name: CircuitName, publicSignals: readonly (string | bigint)[], proof: Groth16Proof): Promise<boolean> {
    check(!this.closed, "prover", "is closed");
    const l = this.load(name);
    const expected = CIRCUITS[name].publicInputs.length + CIRCUITS[name].publicOutputs.length;
    check(publicSignals.length === expected, "publicSignals", `must have ${expected} entries`, {
      got: publicSignals.length,
    });
    await bn128();
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
    const native = this.nativeMsm;
    this.nativeMsm = undefined;
    if (native) await (await native.catch(() => undefined))?.close();
    const own = this.ownCurve;
    this.ownCurve = undefined;
    if (own) await (await own).terminate();
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
