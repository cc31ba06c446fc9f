import * as path from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1";
import { keccak_256 } from "@noble/hashes/sha3";
import { getAddress, keccak256 } from "ethers";

/**
 * secp256k1 and Keccak-256 for the hot paths of the agents: every market transaction is signed
 * once and hashed several times (its signing hash, its hash, every checksummed address ethers
 * formats), and a simulated day does that half a million times on one thread. libsecp256k1 signs
 * about ten times faster than @noble/curves and a native Keccak state hashes a short input about
 * five times faster than @noble/hashes.
 *
 * Both are native add-ons Hardhat already installs (the `secp256k1` and `keccak` packages, through
 * ethereum-cryptography); they are loaded from wherever Node resolves them, and when they are
 * missing or fail to load (another platform, another package manager) everything falls back to
 * @noble, which gives the same bytes: signatures are RFC 6979 with low s either way (tested), so
 * a ledger does not depend on which implementation signed it. PETRA_NATIVE_CRYPTO=0 forces the
 * fallback, for comparing the two.
 */

interface NativeSecp256k1 {
  ecdsaSign(msg32: Uint8Array, seckey: Uint8Array): { signature: Uint8Array; recid: number };
  publicKeyCreate(seckey: Uint8Array, compressed?: boolean): Uint8Array;
}

interface NativeKeccakState {
  initialize(rate: number, capacity: number): void;
  absorb(data: Buffer): void;
  absorbLastFewBits(bits: number): void;
  squeeze(length: number): Buffer;
}

function loadNative<T>(pkg: string, load: (dir: string) => T): T | undefined {
  if (process.env.PETRA_NATIVE_CRYPTO === "0") return undefined;
  // Hoisted to the top of node_modules by npm; otherwise next to Hardhat's own dependencies.
  for (const from of [__dirname, hardhatDir()]) {
    if (from === undefined) continue;
    try {
      const dir = path.dirname(require.resolve(`${pkg}/package.json`, { paths: [from] }));
      return load(dir);
    } catch {
      // not there, or its add-on does not load on this platform: try the next place
    }
  }
  return undefined;
}

function hardhatDir(): string | undefined {
  try {
    return path.dirname(require.resolve("hardhat/package.json"));
  } catch {
    return undefined;
  }
}

// `bindings.js` is the add-on alone: the package's main module would fall back to elliptic, slower than @noble.
const NATIVE_SECP: NativeSecp256k1 | undefined = loadNative(
  "secp256k1",
  (dir) => require(path.join(dir, "bindings.js")) as NativeSecp256k1,
);

const NATIVE_KECCAK: (new () => NativeKeccakState) | undefined = loadNative("keccak", (dir) => {
  const gypBuild = require(require.resolve("node-gyp-build", { paths: [dir] })) as (d: string) => unknown;
  const State = gypBuild(dir);
  if (typeof State !== "function") throw new Error("keccak: the add-on did not load");
  return State as new () => NativeKeccakState;
});

/** Which implementations are in use (benchmarks record it). */
export const cryptoBackend = {
  secp256k1: NATIVE_SECP ? "libsecp256k1" : "@noble/curves",
  keccak: NATIVE_KECCAK ? "native keccak" : "@noble/hashes",
} as const;

export interface RecoverableSignature {
  r: bigint;
  s: bigint;
  /** 0 or 1: the parity of R's y. */
  recovery: number;
}

/** ECDSA over a 32-byte digest, RFC 6979 nonce, low s: the signature ethers' Wallet makes. */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): RecoverableSignature {
  if (NATIVE_SECP) {
    const { signature, recid } = NATIVE_SECP.ecdsaSign(digest, privateKey);
    const hex = Buffer.from(signature).toString("hex");
    return { r: BigInt(`0x${hex.slice(0, 64)}`), s: BigInt(`0x${hex.slice(64)}`), recovery: recid };
  }
  const sig = secp256k1.sign(digest, privateKey, { lowS: true });
  return { r: sig.r, s: sig.s, recovery: sig.recovery };
}

/** The uncompressed public key (65 bytes, 0x04 first) of a private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return NATIVE_SECP ? NATIVE_SECP.publicKeyCreate(privateKey, false) : secp256k1.getPublicKey(privateKey, false);
}

/** How many private keys' addresses addressOfPrivateKey remembers (a few per household). */
const ADDRESS_MEMO_SIZE = 8192;
const addressMemo = new Map<string, string>();

/**
 * The checksummed address of a private key: the last 20 bytes of the Keccak-256 of its public key,
 * as ethers' computeAddress gives it (tested). Remembered for the last ADDRESS_MEMO_SIZE keys: a
 * pseudonym's address is wanted by the wallet that derives it and again by the signer made for
 * it, and each costs an elliptic-curve multiplication (a simulated day derives ~100,000).
 */
export function addressOfPrivateKey(privateKey: Uint8Array): string {
  const id = Buffer.from(privateKey.buffer, privateKey.byteOffset, privateKey.byteLength).toString("hex");
  let address = addressMemo.get(id);
  if (address === undefined) {
    const digest = keccak256Bytes(publicKeyOf(privateKey).subarray(1));
    address = getAddress(`0x${Buffer.from(digest.buffer, digest.byteOffset + 12, 20).toString("hex")}`);
    if (addressMemo.size >= ADDRESS_MEMO_SIZE) addressMemo.delete(addressMemo.keys().next().value as string);
    addressMemo.set(id, address);
  }
  return address;
}

/** Keccak-256 of `data`, natively when the add-on is there. */
export function keccak256Bytes(data: Uint8Array): Uint8Array {
  if (!NATIVE_KECCAK) return keccak_256(data);
  const state = new NATIVE_KECCAK();
  state.initialize(1088, 512);
  state.absorb(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  // Keccak's own padding (not SHA-3's): the delimited suffix 0x01.
  state.absorbLastFewBits(0x01);
  return new Uint8Array(state.squeeze(32));
}

let installed = false;

/**
 * Makes ethers hash with the native Keccak (ethers' documented `keccak256.register` hook): what
 * ethers hashes internally, checksummed addresses and transaction hashes above all, then costs a
 * fifth. The same digests, so nothing a run writes changes. Idempotent; a no-op without the add-on.
 */
export function useFastKeccakInEthers(): void {
  if (installed || !NATIVE_KECCAK) return;
  keccak256.register(keccak256Bytes);
  installed = true;
}
