import { secp256k1 } from "@noble/curves/secp256k1";
import { hmac } from "@noble/hashes/hmac";
import { sha512 } from "@noble/hashes/sha512";
import { computeAddress, getBytes, HDNodeWallet, hexlify, sha256, toBeHex, toBigInt, toUtf8Bytes } from "ethers";
import { check } from "../common/errors";
import type { Rng } from "../common/rng";

/** When a household moves to a new anonymous address. */
export type RotationPolicy =
  /** One address for the whole run: every trade of the household is linkable. */
  | { kind: "single" }
  /** A fixed pool of `poolSize` addresses, one picked at random per withdrawal (the PETra authors' code). */
  | { kind: "pool"; poolSize: number }
  /** A fresh address for each trading interval. */
  | { kind: "per-interval" }
  /** A fresh address for each withdrawal, hence each offer (an asset can only be offered by its owner). */
  | { kind: "per-offer" };

export const ROTATION_KINDS = ["single", "pool", "per-interval", "per-offer"] as const;

export interface Pseudonym {
  /** Index in the household's pseudonym derivation path. */
  index: number;
  address: string;
  privateKey: string;
}

export interface PseudonymWalletOptions {
  /** The run's seed: the same seed and household give the same addresses. */
  runSeed: number;
  householdId: string;
  policy: RotationPolicy;
  /** Picks pool members; only the pool policy draws from it. */
  rng: Rng;
}

// BIP-44 style accounts under the household's root: 0' its main (funding) address, 1' its
// pseudonyms, so the two never collide. The long-term messaging key is not derived here: it is an
// Ed25519 key from the OS CSPRNG (agents/envelope.ts), never from a run seed.
const MAIN_PATH = "m/44'/60'/0'/0/0";
const PSEUDONYM_ACCOUNT_PATH = "m/44'/60'/1'/0";

/**
 * A household's HD wallet, derived from the run seed, and the rotation policy that decides which
 * pseudonym each withdrawal goes to. Derived, not random, so that ground truth and reruns agree.
 * Keys derived from a small integer seed are for experiments on local chains only.
 */
export class PseudonymWallet {
  readonly #root: HDNodeWallet;
  #pseudonymAccount: HDNodeWallet | undefined;
  readonly #policy: RotationPolicy;
  readonly #rng: Rng;
  readonly #byIndex = new Map<number, Pseudonym>();
  readonly #byInterval = new Map<number, number>();
  #nextFresh = 0;

  constructor(opts: PseudonymWalletOptions) {
    check(
      Number.isInteger(opts.runSeed) && opts.runSeed >= 0,
      "runSeed",
      `must be a non-negative integer, got ${opts.runSeed}`,
    );
    check(
      typeof opts.householdId === "string" && opts.householdId.length > 0,
      "householdId",
      "must be a non-empty string",
    );
    validateRotationPolicy(opts.policy);
    this.#policy = opts.policy;
    this.#rng = opts.rng;
    const seed = sha256(toUtf8Bytes(`petra-lab/run/${opts.runSeed}/household/${opts.householdId}`));
    this.#root = HDNodeWallet.fromSeed(seed);
  }

  get policy(): RotationPolicy {
    return this.#policy;
  }

  /** The household's own (main) address: where its ether lives; linkable by design. */
  main(): Pseudonym {
    const node = this.#root.derivePath(MAIN_PATH);
    return { index: -1, address: node.address, privateKey: node.privateKey };
  }

  /** The pseudonym for the next withdrawal, which is for trading `interval`. */
  next(interval: number): Pseudonym {
    check(Number.isInteger(interval), "interval", `must be an integer, got ${interval}`);
    const p = this.#policy;
    switch (p.kind) {
      case "single":
        return this.at(0);
      case "pool":
        return this.at(this.#rng.int(0, p.poolSize - 1));
      case "per-interval": {
        let index = this.#byInterval.get(interval);
        if (index === undefined) {
          index = this.#nextFresh++;
          this.#byInterval.set(interval, index);
        }
        return this.at(index);
      }
      case "per-offer":
        return this.at(this.#nextFresh++);
      default: {
        const unreachable: never = p;
        throw new Error(`unhandled rotation policy ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Pseudonym number `index`. */
  at(index: number): Pseudonym {
    check(Number.isInteger(index) && index >= 0, "index", `must be a non-negative integer, got ${index}`);
    let p = this.#byIndex.get(index);
    if (!p) {
      // The account node is derived once: each level of a path costs an elliptic-curve multiplication.
      this.#pseudonymAccount ??= this.#root.derivePath(PSEUDONYM_ACCOUNT_PATH);
      p = { index, ...deriveChildKey(this.#pseudonymAccount, index) };
      this.#byIndex.set(index, p);
    }
    return p;
  }

  /** Every pseudonym handed out so far, by index: the household's part of the ground truth. */
  used(): Pseudonym[] {
    return [...this.#byIndex.values()].sort((a, b) => a.index - b.index);
  }
}

const CURVE_ORDER = secp256k1.CURVE.n;

/**
 * BIP-32 non-hardened child `index` of `parent`: the same key and address as ethers'
 * `parent.deriveChild(index)`, for one elliptic-curve multiplication instead of ethers' three (it
 * also computes the child's fingerprint and builds a wallet). A day of 1,000 households derives
 * ~100,000 pseudonyms.
 */
export function deriveChildKey(parent: HDNodeWallet, index: number): { address: string; privateKey: string } {
  check(Number.isInteger(index) && index >= 0 && index < 2 ** 31, "index", `must be in [0, 2^31), got ${index}`);
  const data = new Uint8Array(37);
  data.set(getBytes(parent.publicKey), 0);
  new DataView(data.buffer).setUint32(33, index);
  const I = hmac(sha512, getBytes(parent.chainCode), data);
  const il = toBigInt(I.subarray(0, 32));
  const k = (il + toBigInt(parent.privateKey)) % CURVE_ORDER;
  if (il >= CURVE_ORDER || k === 0n) {
    // BIP-32's "proceed with the next index" case (probability ~2^-127): ethers' own handling.
    const node = parent.deriveChild(index);
    return { address: node.address, privateKey: node.privateKey };
  }
  const privateKey = toBeHex(k, 32);
  return { address: computeAddress(hexlify(secp256k1.getPublicKey(getBytes(privateKey), false))), privateKey };
}

export function validateRotationPolicy(policy: RotationPolicy): void {
  check(
    policy !== undefined && (ROTATION_KINDS as readonly string[]).includes(policy.kind),
    "policy.kind",
    `must be one of ${ROTATION_KINDS.join(", ")}, got ${JSON.stringify(policy?.kind)}`,
  );
  if (policy.kind === "pool") {
    check(
      Number.isInteger(policy.poolSize) && policy.poolSize >= 1,
      "policy.poolSize",
      `must be a positive integer, got ${policy.poolSize}`,
    );
  }
}
