import type { LogParams, TransactionReceiptParams } from "ethers";
import { checksummed } from "../market-log";

/**
 * ethers' formatting of receipts and logs (formatTransactionReceipt, formatReceiptLog, formatLog
 * in ethers/providers/format), for what a node answers, at a fraction of the cost.
 *
 * A simulated day wraps ~340,000 receipts (every household waits for its own, the DSO for its
 * mints, with a log per asset). ethers' formatter checksums every address afresh (a Keccak hash
 * each, the market's own address in every log) through a generic field-by-field formatter; on
 * 1,000 households it was ~5% of the main thread by day. Here the checksums come from the
 * process's memo (market-log's `checksummed`) and the fields are read directly.
 *
 * The result is the one ethers gives, field for field (tested on a simulated run's receipts and
 * logs). A value of any other shape than a node's hex strings (a number, a mixed-case address, a
 * field of the wrong width) gives undefined, and the caller uses ethers' formatter, which then
 * accepts or refuses it as it always did.
 */

const HASH = /^0x[0-9a-fA-F]{64}$/;
const DATA = /^0x(?:[0-9a-fA-F]{2})*$/;
const LOWER_ADDRESS = /^0x[0-9a-f]{40}$/;
const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/;

/** Thrown inside the fast path when a field is not as a node writes it; never escapes. */
class Unusual extends Error {}

const hash = (v: unknown): string => {
  if (typeof v !== "string" || !HASH.test(v)) throw new Unusual();
  return v;
};
const data = (v: unknown): string => {
  if (typeof v !== "string" || !DATA.test(v)) throw new Unusual();
  return v;
};
const address = (v: unknown): string => {
  if (typeof v !== "string" || !LOWER_ADDRESS.test(v)) throw new Unusual();
  return checksummed(v);
};
const maybeAddress = (v: unknown): string | null => (v == null ? null : address(v));
const bigint = (v: unknown): bigint => {
  if (typeof v !== "string" || !QUANTITY.test(v)) throw new Unusual();
  return BigInt(v);
};
const num = (v: unknown): number => {
  const n = Number(bigint(v));
  if (!Number.isSafeInteger(n)) throw new Unusual();
  return n;
};

type Raw = Record<string, unknown>;

/** ethers' `object()` formatter reads an alternative name only when the first is absent. */
const field = (r: Raw, name: string, alt: string): unknown => (name in r ? r[name] : r[alt]);

function receiptLog(v: unknown): LogParams {
  if (typeof v !== "object" || v === null) throw new Unusual();
  const l = v as Raw;
  const topics = l.topics;
  if (!Array.isArray(topics)) throw new Unusual();
  // The fields formatReceiptLog reads: no `removed`, which ethers' Log then leaves false.
  return {
    transactionIndex: num(l.transactionIndex),
    blockNumber: num(l.blockNumber),
    transactionHash: hash(l.transactionHash),
    address: address(l.address),
    topics: topics.map(hash),
    data: data(l.data),
    index: num(field(l, "index", "logIndex")),
    blockHash: hash(l.blockHash),
  } as unknown as LogParams;
}

/** formatTransactionReceipt's result for `raw`, or undefined if it is not shaped as a node's answer. */
export function receiptParamsOf(raw: unknown): TransactionReceiptParams | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Raw;
  try {
    if (!Array.isArray(r.logs)) return undefined;
    const out: Record<string, unknown> = {
      to: maybeAddress(r.to),
      from: maybeAddress(r.from),
      contractAddress: maybeAddress(r.contractAddress),
      index: num(field(r, "index", "transactionIndex")),
    };
    // Optional fields as ethers' allowNull leaves them: absent when the node sent none, or null.
    if (r.root != null) return undefined; // pre-Byzantium receipts: left to ethers
    out.gasUsed = bigint(r.gasUsed);
    out.blobGasUsed = r.blobGasUsed == null ? null : bigint(r.blobGasUsed);
    if (r.logsBloom != null) out.logsBloom = data(r.logsBloom);
    out.blockHash = hash(r.blockHash);
    out.hash = hash(field(r, "hash", "transactionHash"));
    out.logs = r.logs.map(receiptLog);
    out.blockNumber = num(r.blockNumber);
    out.cumulativeGasUsed = bigint(r.cumulativeGasUsed);
    const price = field(r, "effectiveGasPrice", "gasPrice");
    if (price != null) out.effectiveGasPrice = bigint(price);
    out.blobGasPrice = r.blobGasPrice == null ? null : bigint(r.blobGasPrice);
    if (r.status != null) out.status = num(r.status);
    out.type = r.type == null ? 0 : num(r.type);
    return out as unknown as TransactionReceiptParams;
  } catch (e) {
    if (e instanceof Unusual) return undefined;
    throw e;
  }
}

/** formatLog's result for `raw` (a log of eth_getLogs), or undefined if it is not shaped as a node's answer. */
export function logParamsOf(raw: unknown): LogParams | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const l = raw as Raw;
  try {
    const topics = l.topics;
    if (!Array.isArray(topics)) return undefined;
    let removed = false;
    if (l.removed != null) {
      if (l.removed !== true && l.removed !== false) return undefined;
      removed = l.removed;
    }
    return {
      address: address(l.address),
      blockHash: hash(l.blockHash),
      blockNumber: num(l.blockNumber),
      data: data(l.data),
      index: num(field(l, "index", "logIndex")),
      removed,
      topics: topics.map(hash),
      transactionHash: hash(l.transactionHash),
      transactionIndex: num(l.transactionIndex),
    };
  } catch (e) {
    if (e instanceof Unusual) return undefined;
    throw e;
  }
}
