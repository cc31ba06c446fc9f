import { type Dataset, type EventRecord, emptyDataset, sortDataset, type TxRecord } from "../../attacks/dataset";
import { toMarketEvent } from "../../attacks/market-replay";
import { check } from "../../common/errors";
import type { Cancel } from "../interfaces";
import { checksummed, decodeMarketLog } from "../market-log";
import type { RawLog, SealedBlock, SimNode } from "./sim-node";

/**
 * A simulated run's ledger, built from the blocks as the node seals them: the records
 * attacks/dataset-rpc.ts would read back from the chain at the end (every transaction with its
 * receipt's status, gas and price, every market event), the same records in the same order
 * (tested), without reading a day's blocks and receipts a second time. Only what the ledger
 * keeps is kept: no raw blocks, no receipts.
 */
export class SimLedger {
  readonly #transactions: TxRecord[] = [];
  readonly #events: EventRecord[] = [];
  /** Logs sealed before the market's address was known (its deployment block), with their block's time. */
  readonly #early: { log: RawLog; timestampS: number }[] = [];
  #market: string | undefined;
  readonly #sub: Cancel;

  constructor(node: SimNode) {
    this.#sub = node.onBlock((b) => this.#take(b));
  }

  /** The market whose events the ledger keeps; logs sealed before this are decoded now. */
  setMarket(address: string): void {
    check(/^0x[0-9a-fA-F]{40}$/.test(address), "market", `must be a 0x address, got "${address}"`);
    this.#market = address.toLowerCase();
    for (const { log, timestampS } of this.#early.splice(0)) this.#takeLog(log, timestampS);
  }

  /** Stops listening; the records taken so far stay. */
  stop(): void {
    this.#sub.cancel();
  }

  /** The ledger of blocks fromBlock..toBlock, as readDatasetFromProvider gives it. */
  dataset(header: { chainId: number; fromBlock: number; toBlock: number; market: string; dso: string }): Dataset {
    const inRange = (n: number) => n >= header.fromBlock && n <= header.toBlock;
    const ds = emptyDataset({
      kind: "header",
      version: 1,
      chainId: header.chainId,
      fromBlock: header.fromBlock,
      toBlock: header.toBlock,
      contracts: { market: header.market },
      dso: header.dso,
    });
    ds.transactions = this.#transactions.filter((t) => inRange(t.blockNumber));
    ds.events = this.#events.filter((e) => inRange(e.blockNumber));
    sortDataset(ds);
    return ds;
  }

  #take(b: SealedBlock): void {
    b.transactions.forEach((tx, i) => {
      const receipt = b.receipts[i];
      check(
        receipt !== undefined && receipt.transactionHash.toLowerCase() === tx.hash.toLowerCase(),
        "receipts",
        `block ${b.number}: no receipt for transaction ${i} (${tx.hash})`,
      );
      // Field by field as ethers formats a block's transaction and its receipt (dataset-rpc.ts).
      const data = tx.input.toLowerCase();
      this.#transactions.push({
        kind: "tx",
        hash: tx.hash.toLowerCase(),
        from: checksummed(tx.from.toLowerCase()),
        to: tx.to == null ? null : checksummed(tx.to.toLowerCase()),
        valueWei: BigInt(tx.value),
        gasPriceWei: BigInt(receipt.effectiveGasPrice ?? receipt.gasPrice ?? tx.gasPrice ?? 0),
        gasUsed: BigInt(receipt.gasUsed),
        blockNumber: b.number,
        timestamp: b.timestampS,
        nonce: Number(tx.nonce),
        status: receipt.status == null ? 0 : Number(receipt.status),
        selector: data.length >= 10 ? data.slice(0, 10) : "0x",
      });
    });
    for (const log of b.logs) {
      if (this.#market === undefined) this.#early.push({ log, timestampS: b.timestampS });
      else this.#takeLog(log, b.timestampS);
    }
  }

  #takeLog(log: RawLog, timestampS: number): void {
    if (log.removed || log.address.toLowerCase() !== this.#market) return;
    const event = toMarketEvent(decodeMarketLog(log));
    if (!event) return;
    this.#events.push({
      kind: "event",
      contract: "market",
      blockNumber: Number(log.blockNumber),
      logIndex: Number(log.logIndex),
      txHash: log.transactionHash.toLowerCase(),
      timestamp: timestampS,
      event,
    });
  }
}
