import { secp256k1 } from "@noble/curves/secp256k1";
import { hmac } from "@noble/hashes/hmac";
import { sha512 } from "@noble/hashes/sha512";
import { getBytes, type HDNodeWallet, sha256, toBeHex, toBigInt, toUtf8Bytes } from "ethers";
import { check, PetraError } from "../common/errors";
import { addressOfPrivateKey, publicKeyOf } from "../common/fast-crypto";
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
  readonly #root: KeyNode;
  #pseudonymAccount: KeyNode | undefined;
  readonly #policy: RotationPolicy;
  readonly #rng: Rng;
  readonly #byIndex = new Map<number, Pseudonym>();
  readonly #byAddress = new Map<string, Pseudonym>();
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
    this.#root = masterKeyNode(getBytes(seed));
  }

  get policy(): RotationPolicy {
    return this.#policy;
  }

  /** The household's own (main) address: where its ether lives; linkable by design. */
  main(): Pseudonym {
    const node = deriveKeyPath(this.#root, MAIN_PATH);
    return { index: -1, ...keyOf(node) };
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
      this.#pseudonymAccount ??= deriveKeyPath(this.#root, PSEUDONYM_ACCOUNT_PATH);
      p = { index, ...deriveChildKey(this.#pseudonymAccount, index) };
      this.#byIndex.set(index, p);
      this.#byAddress.set(p.address, p);
    }
    return p;
  }

  /** The pseudonym handed out with `address`, if any. */
  find(address: string): Pseudonym | undefined {
    return this.#byAddress.get(address);
  }

  /** Every pseudonym handed out so far, by index: the household's part of the ground truth. */
  used(): Pseudonym[] {
    return [...this.#byIndex.values()].sort((a, b) => a.index - b.index);
  }
}

const CURVE_ORDER = secp256k1.CURVE.n;
const HARDENED = 2 ** 31;

/** A BIP-32 extended private key: what derivation needs, nothing of ethers' wallet around it. */
export interface KeyNode {
  privateKey: bigint;
  chainCode: Uint8Array;
  /** Compressed public key, once a non-hardened child needed it: every pseudonym is one. */
  publicKey?: Uint8Array;
}

function compressedPublicKey(node: KeyNode): Uint8Array {
  if (node.publicKey === undefined) {
    const full = publicKeyOf(getBytes(toBeHex(node.privateKey, 32)));
    const c = new Uint8Array(33);
    c[0] = ((full[64] as number) & 1) === 1 ? 0x03 : 0x02;
    c.set(full.subarray(1, 33), 1);
    node.publicKey = c;
  }
  return node.publicKey;
}

/** BIP-32's master node from a seed (as ethers' HDNodeWallet.fromSeed). */
export function masterKeyNode(seed: Uint8Array): KeyNode {
  check(seed.length >= 16 && seed.length <= 64, "seed", `must be 16 to 64 bytes, got ${seed.length}`);
  const I = hmac(sha512, toUtf8Bytes("Bitcoin seed"), seed);
  const k = toBigInt(I.subarray(0, 32));
  if (k === 0n || k >= CURVE_ORDER)
    throw new PetraError("INVALID_ARGUMENT", "seed: gives an invalid BIP-32 master key");
  return { privateKey: k, chainCode: I.slice(32) };
}

/**
 * BIP-32 child `index` of `parent` (hardened from 2^31 on): one HMAC and, for a non-hardened
 * child, one elliptic-curve multiplication (the parent's public key), where ethers' deriveChild
 * makes three and builds a wallet per level.
 */
export function childKeyNode(parent: KeyNode, index: number): KeyNode {
  check(Number.isInteger(index) && index >= 0 && index < 2 ** 32, "index", `must be in [0, 2^32), got ${index}`);
  const data = new Uint8Array(37);
  if (index >= HARDENED) data.set(getBytes(toBeHex(parent.privateKey, 32)), 1);
  else data.set(compressedPublicKey(parent), 0);
  new DataView(data.buffer).setUint32(33, index);
  const I = hmac(sha512, parent.chainCode, data);
  const il = toBigInt(I.subarray(0, 32));
  const k = (il + parent.privateKey) % CURVE_ORDER;
  // BIP-32's "proceed with the next index" case has probability ~2^-127; ethers throws on it too.
  if (il >= CURVE_ORDER || k === 0n)
    throw new PetraError("INVALID_ARGUMENT", `index: BIP-32 child ${index} is invalid; use the next index`);
  return { privateKey: k, chainCode: I.slice(32) };
}

/** A path such as m/44'/60'/1'/0 below `root`. */
export function deriveKeyPath(root: KeyNode, path: string): KeyNode {
  const parts = path.split("/");
  check(parts[0] === "m", "path", `must start at m/, got "${path}"`);
  let node = root;
  for (const part of parts.slice(1)) {
    const m = /^(\d+)('?)$/.exec(part);
    check(m !== null, "path", `"${part}" in "${path}" is not an index`);
    const n = Number(m?.[1]);
    check(n < HARDENED, "path", `index ${n} in "${path}" is too large`);
    node = childKeyNode(node, m?.[2] === "'" ? n + HARDENED : n);
  }
  return node;
}

function keyOf(node: KeyNode): { address: string; privateKey: string } {
  const privateKey = toBeHex(node.privateKey, 32);
  return { address: addressOfPrivateKey(getBytes(privateKey)), privateKey };
}

/**
 * BIP-32 non-hardened child `index` of `parent` as a key and its address: the same as ethers'
 * `parent.deriveChild(index)` (tested), for one elliptic-curve multiplication per key instead of
 * ethers' three. A day of 1,000 households derives ~100,000 pseudonyms.
 */
export function deriveChildKey(parent: KeyNode | HDNodeWallet, index: number): { address: string; privateKey: string } {
  check(Number.isInteger(index) && index >= 0 && index < HARDENED, "index", `must be in [0, 2^31), got ${index}`);
  const node: KeyNode =
    typeof parent.privateKey === "bigint"
      ? (parent as KeyNode)
      : {
          privateKey: toBigInt(parent.privateKey),
          chainCode: getBytes((parent as HDNodeWallet).chainCode),
          publicKey: getBytes((parent as HDNodeWallet).publicKey),
        };
  return keyOf(childKeyNode(node, index));
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
