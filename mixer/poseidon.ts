/**
 * Poseidon over BN254 as circomlib's circuits compute it (circomlibjs is the reference the
 * circuits are tested against). Built once per process: the wasm build takes ~100 ms.
 */
export type Poseidon = (inputs: readonly bigint[]) => bigint;

type CircomlibPoseidon = ((inputs: bigint[]) => Uint8Array) & { F: { toObject(x: Uint8Array): bigint } };
const circomlibjs: { buildPoseidon(): Promise<CircomlibPoseidon> } = require("circomlibjs");

let shared: Promise<Poseidon> | undefined;

export function buildPoseidon(): Promise<Poseidon> {
  shared ??= circomlibjs.buildPoseidon().then((p) => (inputs: readonly bigint[]) => p.F.toObject(p([...inputs])));
  return shared;
}
