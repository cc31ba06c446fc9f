import { type Dataset, type EventRecord, emptyDataset, sortDataset } from "./dataset";
import type { MarketEvent } from "./market-replay";

export const MARKET = "0x00000000000000000000000000000000000000aa";
export const MIXER = "0x00000000000000000000000000000000000000bb";
export const DSO = "0x00000000000000000000000000000000000000d5";

/** A deterministic address for a readable label ("h1-a0" -> 0x...). */
export function addr(label: string): string {
  let h = 0n;
  for (const ch of label) h = (h * 131n + BigInt(ch.charCodeAt(0))) % 2n ** 160n;
  return `0x${h.toString(16).padStart(40, "0")}`;
}

/**
 * Builds ledgers by hand: small ones for attack tests, whose right answer is known by construction,
 * and large synthetic ones for the attack benchmark. Each call appends a transaction (and its events)
 * in a block of its own, `secondsPerBlock` apart. Not a market simulator: it does not check that the
 * sequence would be valid on chain.
 */
export class LedgerBuilder {
  readonly ds: Dataset = emptyDataset({
    kind: "header",
    version: 1,
    chainId: 31337,
    fromBlock: 0,
    toBlock: 0,
    contracts: { market: MARKET, mixers: [MIXER] },
    dso: DSO,
  });
  private block = 1;
  private nextAsset = 0n;
  private txCount = 0;

  constructor(private readonly secondsPerBlock = 12) {}

  private nextTx(from: string, to: string | null, valueWei = 0n, gasPriceWei = 1_000_000_000n): string {
    const hash = `0x${(++this.txCount).toString(16).padStart(64, "0")}`;
    this.ds.transactions.push({
      kind: "tx",
      hash,
      from,
      to,
      valueWei,
      gasPriceWei,
      gasUsed: 21_000n,
      blockNumber: this.block,
      timestamp: this.block * this.secondsPerBlock,
      nonce: this.txCount,
      status: 1,
      selector: "0x",
    });
    return hash;
  }

  private event(txHash: string, event: EventRecord["event"], logIndex = 0): void {
    this.ds.events.push({
      kind: "event",
      contract: event.name.startsWith("Mixer") ? "mixer" : "market",
      blockNumber: this.block,
      logIndex,
      txHash,
      timestamp: this.block * this.secondsPerBlock,
      event,
    });
  }

  private advance(): this {
    this.ds.header.toBlock = this.block;
    this.block++;
    return this;
  }

  /** `from` sends ether to `to`. */
  fund(from: string, to: string): this {
    this.nextTx(from, to, 10n ** 16n);
    return this.advance();
  }

  /** The DSO funds each address's gas in one fundGas call to the market (a GasFunded each). */
  fundGasBatch(to: string[], amountWei = 10n ** 16n): this {
    const tx = this.nextTx(DSO, MARKET, amountWei * BigInt(to.length));
    to.forEach((anonAddress, i) => {
      this.event(tx, { name: "GasFunded", anonAddress, amountWei }, i);
    });
    return this.advance();
  }

  /** The DSO mints one asset per entry, all in one transaction. */
  mint(entries: Array<{ to: string; powerW: number; start: number; end?: number }>): this {
    const tx = this.nextTx(DSO, MARKET);
    entries.forEach((e, i) => {
      const ev: MarketEvent = {
        name: "AssetAdded",
        anonAddress: e.to,
        assetID: this.nextAsset++,
        powerW: BigInt(e.powerW),
        start: BigInt(e.start),
        end: BigInt(e.end ?? e.start),
      };
      this.event(tx, ev, i);
    });
    return this.advance();
  }

  /** The latest asset ID minted (for post and deposit calls that follow a mint). */
  get lastAssetID(): bigint {
    return this.nextAsset - 1n;
  }

  /** `owner` posts asset `assetID` at `price`. */
  post(owner: string, assetID: bigint, price: bigint, offerID: bigint): this {
    const tx = this.nextTx(owner, MARKET);
    this.event(tx, { name: "OfferPosted", offerID, assetID, priceMicroPerWInterval: price });
    return this.advance();
  }

  /** `owner` deposits asset `assetID`. */
  deposit(owner: string, assetID: bigint): this {
    const tx = this.nextTx(owner, MARKET);
    this.event(tx, { name: "AssetDeposited", anonAddress: owner, assetID });
    return this.advance();
  }

  /** `from` calls the market (any function), paying `gasPriceWei`. */
  call(from: string, gasPriceWei = 1_000_000_000n): this {
    this.nextTx(from, MARKET, 0n, gasPriceWei);
    return this.advance();
  }

  mixerDeposit(depositor: string, denomination: bigint): this {
    const tx = this.nextTx(depositor, MIXER, denomination);
    this.event(tx, { name: "MixerDeposit", depositor, commitment: `0x${this.txCount.toString(16)}`, denomination });
    return this.advance();
  }

  /** `relayer` submits a withdrawal of one note to `recipient`; as the Mixer does, the market credits the recipient and, for a fee, the relayer in the same transaction. */
  mixerWithdrawal(recipient: string, relayer: string, denomination: bigint, fee = 0n): this {
    const tx = this.nextTx(relayer, MIXER);
    this.event(tx, {
      name: "MixerWithdrawal",
      recipient,
      relayer,
      nullifierHash: `0x${this.txCount.toString(16)}`,
      denomination,
      fee,
    });
    this.event(tx, { name: "FinancialAdded", anonAddress: recipient, amount: denomination - fee }, 1);
    if (fee > 0n) this.event(tx, { name: "FinancialAdded", anonAddress: relayer, amount: fee }, 2);
    return this.advance();
  }

  /** A network observer saw `from`'s latest transaction arrive from `source`. */
  observed(source: string, from: string): this {
    const tx = [...this.ds.transactions].reverse().find((t) => t.from === from);
    this.ds.observer.push({
      kind: "observer",
      timeMs: this.block * this.secondsPerBlock * 1000,
      source,
      txHash: tx?.hash,
      txFrom: from,
    });
    return this;
  }

  /** Skips `seconds` of chain time. */
  wait(seconds: number): this {
    this.block += Math.ceil(seconds / this.secondsPerBlock);
    return this;
  }

  build(): Dataset {
    sortDataset(this.ds);
    return this.ds;
  }
}
