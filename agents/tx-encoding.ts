import { Signature, Transaction } from "ethers";
import { PetraError } from "../common/errors";
import { keccak256Bytes, signDigest } from "../common/fast-crypto";

/** The fields of a transaction to sign; resolved (addresses, not names), as ethers' Transaction.from takes them. */
export type TxFields = Parameters<typeof Transaction.from>[0];

/** A signed transaction: its fields, the bytes to broadcast and its hash, each computed once. */
export interface SignedTx {
  /** The signed transaction as ethers holds it (fields and signature), for responses and logs. */
  tx: Transaction;
  /** 0x-prefixed signed bytes, what eth_sendRawTransaction takes. */
  serialized: string;
  /** 0x-prefixed Keccak-256 of `serialized`. */
  hash: string;
}

/**
 * Signs `fields` as ethers' Wallet signs them (RFC 6979, low s: the same bytes, tested).
 *
 * EIP-1559 transactions without an access list (every transaction the agents send) are encoded
 * here, straight from the fields to hex: ethers' Transaction serializes a transaction again on
 * every read of `serialized`, `unsignedHash` or `hash`, checksumming its address each time, three
 * times per send, and a simulated day sends half a million. Other types go through ethers.
 */
export function signTransactionWith(privateKey: Uint8Array, fields: TxFields): SignedTx {
  const tx = Transaction.from(fields);
  if (tx.type === 2 && tx.accessList !== null && tx.accessList.length === 0) {
    const maxFee = tx.maxFeePerGas ?? 0n;
    const priorityFee = tx.maxPriorityFeePerGas ?? 0n;
    // ethers refuses this too, when it serializes.
    if (priorityFee > maxFee)
      throw new PetraError(
        "INVALID_ARGUMENT",
        `maxPriorityFeePerGas: ${priorityFee} is more than maxFeePerGas ${maxFee}`,
      );
    const body = [
      quantity(tx.chainId, "chainId"),
      quantity(tx.nonce, "nonce"),
      quantity(priorityFee, "maxPriorityFeePerGas"),
      quantity(maxFee, "maxFeePerGas"),
      quantity(tx.gasLimit, "gasLimit"),
      tx.to === null ? "" : tx.to.slice(2).toLowerCase(),
      quantity(tx.value, "value"),
      tx.data.slice(2).toLowerCase(),
      LIST_EMPTY,
    ].map((f, i) => (i === 8 ? f : rlpString(f)));
    const digest = keccak256Bytes(Buffer.from(`02${rlpList(body)}`, "hex"));
    const sig = signDigest(digest, privateKey);
    const r = hex32(sig.r);
    const s = hex32(sig.s);
    const signedHex = `02${rlpList([...body, rlpString(quantity(sig.recovery, "yParity")), rlpString(quantity(sig.r, "r")), rlpString(quantity(sig.s, "s"))])}`;
    tx.signature = Signature.from({ r: `0x${r}`, s: `0x${s}`, v: sig.recovery ? 0x1c : 0x1b });
    const serialized = `0x${signedHex}`;
    return { tx, serialized, hash: txHashOf(serialized) };
  }
  const sig = signDigest(Buffer.from(tx.unsignedHash.slice(2), "hex"), privateKey);
  tx.signature = Signature.from({
    r: `0x${hex32(sig.r)}`,
    s: `0x${hex32(sig.s)}`,
    v: sig.recovery ? 0x1c : 0x1b,
  });
  const serialized = tx.serialized;
  return { tx, serialized, hash: txHashOf(serialized) };
}

/** RLP of the empty list. */
const LIST_EMPTY = "c0";

/**
 * The hash of a signed transaction (0x hex): Keccak-256 of its bytes, as a flat string. ethers'
 * hex strings are ropes of one piece per byte (~2.6 KB each), and hashes are kept by the thousand.
 */
export function txHashOf(raw: string): string {
  const bytes = keccak256Bytes(Buffer.from(raw.slice(2), "hex"));
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}

function hex32(v: bigint): string {
  return v.toString(16).padStart(64, "0");
}

/** A non-negative integer as RLP wants it: big-endian, no leading zero bytes, zero as no bytes. */
function quantity(v: bigint | number, field: string): string {
  const n = BigInt(v);
  if (n < 0n) throw new PetraError("INVALID_ARGUMENT", `${field}: ${n} is negative`);
  if (n === 0n) return "";
  const h = n.toString(16);
  return h.length % 2 === 0 ? h : `0${h}`;
}

/** Length prefix of an RLP item: `short` + length below 56 bytes, else `long` + the length's length, then the length. */
function prefix(short: number, long: number, byteLength: number): string {
  if (byteLength < 56) return (short + byteLength).toString(16).padStart(2, "0");
  const len = quantity(byteLength, "length");
  return (long + len.length / 2).toString(16) + len;
}

/** RLP of a byte string given as hex without 0x. */
function rlpString(hex: string): string {
  const n = hex.length / 2;
  if (n === 1 && Number.parseInt(hex, 16) < 0x80) return hex;
  return prefix(0x80, 0xb7, n) + hex;
}

/** RLP of a list of already-encoded items. */
function rlpList(items: string[]): string {
  const payload = items.join("");
  return prefix(0xc0, 0xf7, payload.length / 2) + payload;
}

/** What the ledger reads of a transaction besides its receipt: decoded from its signed bytes. */
export interface RawTxFields {
  nonce: bigint;
  /** 0x address in lower case, or null for a contract creation. */
  to: string | null;
  value: bigint;
  /** 0x call data. */
  input: string;
}

/** Where nonce, recipient, value and call data sit in each transaction type's RLP list. */
const FIELD_AT: Record<string, { nonce: number; to: number; value: number; data: number }> = {
  legacy: { nonce: 0, to: 3, value: 4, data: 5 },
  "1": { nonce: 1, to: 4, value: 5, data: 6 },
  "2": { nonce: 1, to: 5, value: 6, data: 7 },
};

/**
 * Nonce, recipient, value and call data of a signed transaction (legacy, EIP-2930 or EIP-1559),
 * read from its RLP without recovering the sender (the receipt names it). Throws naming what is
 * malformed.
 */
export function decodeRawTxFields(raw: string): RawTxFields {
  const hex = raw.startsWith("0x") ? raw.slice(2).toLowerCase() : raw.toLowerCase();
  if (!/^[0-9a-f]*$/.test(hex) || hex.length % 2 !== 0 || hex.length < 2)
    throw new PetraError("INVALID_ARGUMENT", "raw transaction: not an even-length hex string");
  const first = Number.parseInt(hex.slice(0, 2), 16);
  // Typed transactions start with their type byte (below 0x7f); legacy ones with an RLP list.
  const type = first <= 0x7f ? first : undefined;
  const items = rlpListItems(type === undefined ? hex : hex.slice(2));
  const at = FIELD_AT[type === undefined ? "legacy" : String(type)];
  if (at === undefined) throw new PetraError("INVALID_ARGUMENT", `raw transaction: type ${type} is not decoded here`);
  const field = (i: number) => {
    const v = items[i];
    if (v === undefined) throw new PetraError("INVALID_ARGUMENT", `raw transaction: has no field ${i}`);
    return v;
  };
  const to = field(at.to);
  if (to !== "" && to.length !== 40)
    throw new PetraError("INVALID_ARGUMENT", "raw transaction: recipient is not 20 bytes");
  return {
    nonce: BigInt(`0x${field(at.nonce) || "0"}`),
    to: to === "" ? null : `0x${to}`,
    value: BigInt(`0x${field(at.value) || "0"}`),
    input: `0x${field(at.data)}`,
  };
}

/** The top-level items of an RLP list, each a byte string's hex (a nested list is kept encoded). */
function rlpListItems(hex: string): string[] {
  const [start, length, isList] = rlpHeader(hex, 0);
  if (!isList || start + length * 2 !== hex.length)
    throw new PetraError("INVALID_ARGUMENT", "raw transaction: not one RLP list");
  const items: string[] = [];
  for (let p = start; p < hex.length; ) {
    const [s, n, list] = rlpHeader(hex, p);
    items.push(list ? hex.slice(p, s + n * 2) : hex.slice(s, s + n * 2));
    p = s + n * 2;
    if (p > hex.length) throw new PetraError("INVALID_ARGUMENT", "raw transaction: an item runs past the end");
  }
  return items;
}

/** [hex offset of the payload, payload length in bytes, is a list] of the RLP item at hex offset `p`. */
function rlpHeader(hex: string, p: number): [number, number, boolean] {
  const b = Number.parseInt(hex.slice(p, p + 2), 16);
  if (Number.isNaN(b)) throw new PetraError("INVALID_ARGUMENT", "raw transaction: truncated");
  if (b < 0x80) return [p, 1, false];
  if (b <= 0xb7) return [p + 2, b - 0x80, false];
  if (b < 0xc0) {
    const ll = b - 0xb7;
    return [p + 2 + ll * 2, Number.parseInt(hex.slice(p + 2, p + 2 + ll * 2), 16), false];
  }
  if (b <= 0xf7) return [p + 2, b - 0xc0, true];
  const ll = b - 0xf7;
  return [p + 2 + ll * 2, Number.parseInt(hex.slice(p + 2, p + 2 + ll * 2), 16), true];
}
