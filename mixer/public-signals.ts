/**
 * The public signals of a withdrawal, from its named public values: the one place that knows the
 * circuits' public-input layout. The prover builds its circuit inputs through here and every
 * off-chain verifier (the relayer's check, tests, benches) builds the array it verifies through
 * here, so the two cannot drift apart.
 *
 * A mixer withdrawal binds recipient, relayer and fee through ONE public input, as Tornado Nova
 * does: extDataHash = keccak256(abi.encode(recipient, relayer, uint64 fee)) mod p. The circuit
 * only carries it; Mixer.withdraw recomputes it from its own arguments (Mixer.extDataHash), so a
 * proof is rejected when any of the three differs from what it was made for. One input instead
 * of three saves two elliptic-curve multiplications per verification on chain (~12.7k gas).
 */
import { AbiCoder, getAddress, keccak256, toBeHex } from "ethers";
import { CIRCUITS, type CircuitName } from "../circuits/instances";
import { check, PetraError } from "../common/errors";
import { ZK } from "../common/zk-params";

/** The public values of a mixer withdrawal, by name: what Mixer.withdraw takes besides the proof. */
export interface MixerWithdrawalPublic {
  root: bigint;
  nullifierHash: bigint;
  recipient: string;
  relayer: string;
  /** Money units the relayer keeps; the contract's uint64. */
  fee: bigint;
}

/** The public values of an allowance withdrawal, by name: what AllowanceVault.withdraw takes besides the proof. */
export interface AllowanceWithdrawalPublic {
  root: bigint;
  nullifierHash: bigint;
  powerW: bigint;
  start: bigint;
  end: bigint;
  recipient: string;
  newCommitments: readonly [bigint, bigint, bigint];
}

export type WithdrawalPublic<C extends CircuitName> = C extends "mixer-withdraw"
  ? MixerWithdrawalPublic
  : AllowanceWithdrawalPublic;

const U64_LIMIT = 1n << 64n;

/** keccak256(abi.encode(recipient, relayer, uint64 fee)) mod p, exactly as Mixer.extDataHash computes it. */
export function extDataHash(recipient: string, relayer: string, fee: bigint): bigint {
  check(typeof fee === "bigint" && fee >= 0n && fee < U64_LIMIT, "fee", "must be a uint64 bigint", { fee });
  const encoded = AbiCoder.defaultAbiCoder().encode(
    ["address", "address", "uint64"],
    [address(recipient, "recipient"), address(relayer, "relayer"), fee],
  );
  return BigInt(keccak256(encoded)) % ZK.fieldModulus;
}

function address(value: string, parameter: string): string {
  try {
    return getAddress(value);
  } catch (e) {
    throw new PetraError("INVALID_ARGUMENT", `${parameter}: must be an Ethereum address`, { parameter }, { cause: e });
  }
}

function named(circuit: CircuitName, v: MixerWithdrawalPublic | AllowanceWithdrawalPublic): Map<string, bigint> {
  const m = new Map<string, bigint>([
    ["root", v.root],
    ["nullifierHash", v.nullifierHash],
  ]);
  if (circuit === "mixer-withdraw") {
    const x = v as MixerWithdrawalPublic;
    m.set("extDataHash", extDataHash(x.recipient, x.relayer, x.fee));
  } else {
    const x = v as AllowanceWithdrawalPublic;
    m.set("powerW", x.powerW);
    m.set("start", x.start);
    m.set("end", x.end);
    m.set("recipient", BigInt(address(x.recipient, "recipient")));
    for (const [i, c] of x.newCommitments.entries()) m.set(`newCommitments[${i}]`, c);
  }
  return m;
}

/**
 * THE public-signal array of a withdrawal in verifier order (the circuit's outputs, then its
 * public inputs, as circuits/instances.ts lists them). Every value must be a field element.
 */
export function withdrawalPublicSignals<C extends CircuitName>(circuit: C, values: WithdrawalPublic<C>): bigint[] {
  check(circuit in CIRCUITS, "circuit", `unknown circuit "${circuit}"`);
  const byName = named(circuit, values);
  const order = [...CIRCUITS[circuit].publicOutputs, ...CIRCUITS[circuit].publicInputs];
  return order.map((name) => {
    const v = byName.get(name);
    if (v === undefined) {
      throw new PetraError("INVALID_ARGUMENT", `${circuit}: no value for public signal "${name}"`, {
        circuit,
        signal: name,
      });
    }
    check(typeof v === "bigint" && v >= 0n && v < ZK.fieldModulus, name, "must be a field element (a bigint below p)", {
      circuit,
    });
    return v;
  });
}

/** An address given as a field element (a uint160, as circuit inputs carry it) or as text, in text form. */
export function addressFromField(value: bigint | string | number, parameter: string): string {
  if (typeof value === "string" && /^0x[0-9a-fA-F]{40}$/.test(value)) return address(value, parameter);
  let x: bigint;
  try {
    x = BigInt(value);
  } catch (e) {
    throw new PetraError(
      "INVALID_ARGUMENT",
      `${parameter}: must be an address or a uint160`,
      { parameter },
      { cause: e },
    );
  }
  check(x >= 0n && x < 1n << 160n, parameter, "must be an address or a uint160");
  return getAddress(toBeHex(x, 20));
}
