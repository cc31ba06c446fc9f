/**
 * The slice of snarkjs (and circomlibjs) the lab uses, typed. Neither package ships types, and a
 * typed `require` keeps ts-node (which ignores ambient .d.ts files) and tsc in agreement.
 */

export type Groth16Proof = {
  pi_a: string[];
  pi_b: string[][];
  pi_c: string[];
  protocol: string;
  curve: string;
};
export type VerificationKey = Record<string, unknown> & { nPublic: number; protocol: string; curve: string };
export type CircuitInputs = Record<string, bigint | string | number | (bigint | string | number)[]>;
type Logger = {
  info: (...a: unknown[]) => void;
  debug: (...a: unknown[]) => void;
  error: (...a: unknown[]) => void;
  warn: (...a: unknown[]) => void;
};

export interface SnarkJs {
  groth16: {
    fullProve(
      input: CircuitInputs,
      wasm: string | Uint8Array,
      zkey: string | Uint8Array,
      logger?: Logger,
      wtnsCalcOptions?: unknown,
      proverOptions?: { singleThread?: boolean },
    ): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    prove(
      zkey: string | Uint8Array,
      wtns: string | Uint8Array,
      logger?: Logger,
    ): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    verify(
      vkey: VerificationKey,
      publicSignals: (string | bigint)[],
      proof: Groth16Proof,
      logger?: Logger,
    ): Promise<boolean>;
    exportSolidityCallData(proof: Groth16Proof, publicSignals: string[]): Promise<string>;
  };
  powersOfTau: {
    newAccumulator(curve: unknown, power: number, fileName: string, logger?: Logger): Promise<unknown>;
    beacon(
      oldPtau: string,
      newPtau: string,
      name: string,
      beaconHashHex: string,
      numIterationsExp: number,
      logger?: Logger,
    ): Promise<unknown>;
    preparePhase2(oldPtau: string, newPtau: string, logger?: Logger): Promise<unknown>;
  };
  wtns: {
    calculate(input: CircuitInputs, wasm: string | Uint8Array, out: { type: "mem"; data?: Uint8Array }): Promise<void>;
  };
  r1cs: {
    info(
      r1csFile: string,
      logger?: Logger,
    ): Promise<{ nConstraints: number; nVars: number; nPubInputs: number; nOutputs: number; nPrvInputs: number }>;
  };
  zKey: {
    newZKey(r1cs: string, ptau: string, zkey: string, logger?: Logger): Promise<unknown>;
    beacon(
      oldZkey: string,
      newZkey: string,
      name: string,
      beaconHashHex: string,
      numIterationsExp: number,
      logger?: Logger,
    ): Promise<unknown>;
    exportVerificationKey(zkey: string, logger?: Logger): Promise<VerificationKey>;
    exportSolidityVerifier(zkey: string, templates: { groth16: string }, logger?: Logger): Promise<string>;
  };
  curves: {
    getCurveFromName(name: string, options?: { singleThread?: boolean }): Promise<{ terminate(): Promise<void> }>;
  };
}

export const snarkjs: SnarkJs = require("snarkjs");

/** A circuit's compiled witness calculator (circom's generated wasm), built once and reused. */
export interface WitnessCalculator {
  /** The witness in snarkjs' binary .wtns format; throws on the first failed constraint. */
  calculateWTNSBin(input: CircuitInputs, sanityCheck?: boolean): Promise<Uint8Array>;
}

/**
 * circom_runtime is the witness-calculator runtime snarkjs itself uses (`wtns.calculate` builds one
 * per call, compiling and instantiating the circuit's 2-3 MB wasm every time); taking it from
 * snarkjs' own dependency keeps the two on one version.
 */
export const buildWitnessCalculator: (wasm: Uint8Array) => Promise<WitnessCalculator> =
  require("circom_runtime").WitnessCalculatorBuilder;

/**
 * snarkjs keeps one bn128 curve (with its worker threads) per process in this global; a process
 * that has proved or verified anything does not exit until it is terminated.
 */
export async function terminateCurveWorkers(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  // terminate() also clears the global, so the next proof builds a fresh curve.
  if (g.curve_bn128) await g.curve_bn128.terminate();
}
