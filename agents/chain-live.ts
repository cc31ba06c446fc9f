import {
  AbstractSigner,
  copyRequest,
  getAddress,
  getBytes,
  type JsonRpcProvider,
  type Provider,
  type Signature,
  type Signer,
  type TransactionLike,
  type TransactionReceipt,
  type TransactionRequest,
  TransactionResponse,
  type TypedDataDomain,
  type TypedDataField,
  toQuantity,
  Wallet,
} from "ethers";
import { check, PetraError } from "../common/errors";
import { addressOfPrivateKey } from "../common/fast-crypto";
import { type EnergyMarket, EnergyMarket__factory } from "../typechain-types";
import { attachEnergyMarket } from "./deploy-market";
import type { Cancel, Chain, ChainLog, Clock, Transport, WatchOptions } from "./interfaces";
import { type SignedTx, signTransactionWith, type TxFields } from "./tx-encoding";

export interface LiveChainOptions {
  rpcUrl: string;
  marketAddress: string;
  transport: Transport;
  /** Whose traffic this is (household id): the transport picks the source address or circuit. */
  identity: string;
  clock: Clock;
  /** Chain id, if known; otherwise asked once from the node. */
  chainId?: number;
  /** Log filter and receipt polling period. Default 100 ms: a local node answers in well under that. */
  pollIntervalMs?: number;
}

/**
 * Gas limits of the market's methods: the gas snapshot's worst case (gas-snapshot.json:
 * acceptOffer splitting into 5 parts, 331k) with room to spare. With a limit given, a send skips
 * eth_estimateGas, which executes the transaction on the node's pending state (every transaction
 * in the mempool first): the costliest call a prosumer makes, one more round trip over Tor, and
 * in simulated mode half the run's time. A transaction that would revert is then mined as
 * reverted instead of refused by the estimate; the prosumer treats both alike.
 */
export const MARKET_GAS_LIMITS = {
  postOffer: 200_000n,
  rescindOffer: 100_000n,
  acceptOffer: 500_000n,
  depositEnergyAsset: 100_000n,
  depositFinancial: 100_000n,
} as const;

/** The gas limit of a market call by its selector, for transactions to `marketAddress`. */
export function marketGasLimits(marketAddress: string): (tx: TransactionRequest) => bigint | undefined {
  const bySelector = gasLimitBySelector();
  const to = marketAddress.toLowerCase();
  return (tx) =>
    typeof tx.to === "string" && tx.to.toLowerCase() === to && typeof tx.data === "string"
      ? bySelector.get(tx.data.slice(0, 10).toLowerCase())
      : undefined;
}

let bySelectorOnce: Map<string, bigint> | undefined;

/** Built once: a simulated day makes a signer, and so asks for these, for every pseudonym. */
function gasLimitBySelector(): Map<string, bigint> {
  if (bySelectorOnce === undefined) {
    const market = EnergyMarket__factory.createInterface();
    bySelectorOnce = new Map();
    for (const [name, gas] of Object.entries(MARKET_GAS_LIMITS)) {
      bySelectorOnce.set(market.getFunction(name as keyof typeof MARKET_GAS_LIMITS).selector.toLowerCase(), gas);
    }
  }
  return bySelectorOnce;
}

export interface SerialNonceSignerOptions {
  /** A fixed gas limit for a transaction (undefined: ask the node's eth_estimateGas). */
  gasLimitFor?: (tx: TransactionRequest) => bigint | undefined;
  /** The next nonce of `address` as the node sees it. Default: eth_getTransactionCount at "pending". */
  pendingNonce?: (address: string) => Promise<number>;
  /** Told of every transaction the node accepted. */
  onSent?: (sent: { from: string; nonce: number; hash: string }) => void;
}

/**
 * A signer whose sends go out one at a time with nonces from its own counter. The counter is only
 * advanced by a send the node accepted; a send that fails (a revert found by gas estimation, a
 * rejected broadcast) resynchronises it from the node, so one failure never leaves a nonce gap
 * that would stall every later transaction (the failure mode of ethers' NonceManager).
 */
export class SerialNonceSigner extends AbstractSigner<JsonRpcProvider> {
  readonly #privateKeyHex: string;
  readonly #privateKey: Uint8Array;
  readonly address: string;
  #wallet: Wallet | undefined;
  readonly #opts: SerialNonceSignerOptions;
  #nextNonce: number | undefined;
  #queue: Promise<void> = Promise.resolve();

  constructor(privateKey: string, provider: JsonRpcProvider, opts: SerialNonceSignerOptions = {}) {
    super(provider);
    check(/^0x[0-9a-fA-F]{64}$/.test(privateKey), "privateKey", "must be 32 bytes of hex");
    this.#privateKeyHex = privateKey;
    this.#privateKey = getBytes(privateKey);
    // Not through ethers' SigningKey (its bundled @noble is twice as slow as the current one, which
    // is ten times slower than libsecp256k1): a simulated day of 1,000 households makes a signer
    // for each of ~100,000 pseudonyms.
    this.address = addressOfPrivateKey(this.#privateKey);
    this.#opts = opts;
  }

  /** An ethers Wallet of the same key, for what is rare here (messages, typed data). */
  #slowWallet(): Wallet {
    this.#wallet ??= new Wallet(this.#privateKeyHex);
    return this.#wallet;
  }

  /**
   * Signs a populated transaction as ethers' Wallet does (RFC 6979, low s: the same bytes), with
   * common/fast-crypto's faster signing; returns the signed transaction object too.
   */
  #sign(populated: TransactionRequest): SignedTx {
    const { from, ...rest } = populated;
    if (from != null && getAddress(String(from)) !== this.address)
      throw new PetraError("INVALID_ARGUMENT", `tx.from: ${String(from)} is not this signer's ${this.address}`);
    return signTransactionWith(this.#privateKey, rest as TxFields);
  }

  async getAddress(): Promise<string> {
    return this.address;
  }

  connect(_provider: Provider | null): Signer {
    throw new PetraError(
      "INVALID_ARGUMENT",
      "provider: a SerialNonceSigner is bound to its chain's provider; ask the Chain for a new signer",
    );
  }

  /**
   * ethers' populateTransaction, with a shorter path for the send every agent makes: a plain
   * address, nonce and gas limit given, fees left to the provider's fee data. ethers resolves
   * every field as a promise twice over and checks the recipient as a possible ENS name; with a
   * thousand households that was the costliest step of a send. The same fields (tested); anything
   * else goes to ethers.
   */
  override async populateTransaction(tx: TransactionRequest): Promise<TransactionLike<string>> {
    const plain =
      typeof tx.to === "string" &&
      /^0x[0-9a-fA-F]{40}$/.test(tx.to) &&
      tx.from == null &&
      tx.nonce != null &&
      tx.gasLimit != null &&
      (tx.type == null || tx.type === 2) &&
      tx.gasPrice == null &&
      tx.maxFeePerGas == null &&
      tx.maxPriorityFeePerGas == null &&
      tx.authorizationList == null &&
      Object.values(tx).every((v) => typeof (v as { then?: unknown } | null)?.then !== "function");
    if (!plain) return super.populateTransaction(tx);
    const provider = this.provider as JsonRpcProvider;
    const pop = copyRequest(tx) as TransactionLike<string>;
    pop.to = getAddress(tx.to as string);
    pop.from = this.address;
    const network = await provider.getNetwork();
    if (pop.chainId != null && BigInt(pop.chainId) !== network.chainId)
      throw new PetraError("INVALID_ARGUMENT", `tx.chainId: ${pop.chainId} is not the provider's ${network.chainId}`);
    pop.chainId = network.chainId;
    const fee = await provider.getFeeData();
    if (fee.maxFeePerGas == null || fee.maxPriorityFeePerGas == null) return super.populateTransaction(tx);
    pop.type = 2;
    pop.maxFeePerGas = fee.maxFeePerGas;
    pop.maxPriorityFeePerGas = fee.maxPriorityFeePerGas;
    return pop;
  }

  async signTransaction(tx: TransactionRequest): Promise<string> {
    return this.#sign(await this.populateTransaction(tx)).serialized;
  }

  signMessage(message: string | Uint8Array): Promise<string> {
    return this.#slowWallet().signMessage(message);
  }

  signTypedData(
    domain: TypedDataDomain,
    types: Record<string, Array<TypedDataField>>,
    value: Record<string, unknown>,
  ): Promise<string> {
    return this.#slowWallet().signTypedData(domain, types, value);
  }

  override sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    const run = async (): Promise<TransactionResponse> => {
      const provider = this.provider as JsonRpcProvider;
      const from = this.address;
      try {
        if (this.#nextNonce === undefined) {
          this.#nextNonce = this.#opts.pendingNonce
            ? await this.#opts.pendingNonce(from)
            : await provider.getTransactionCount(from, "pending");
        }
        const gasLimit = tx.gasLimit ?? this.#opts.gasLimitFor?.(tx);
        const populated = await this.populateTransaction({ ...tx, nonce: this.#nextNonce, gasLimit });
        const response = await broadcast(provider, this.#sign(populated), from);
        this.#opts.onSent?.({ from, nonce: this.#nextNonce, hash: response.hash });
        this.#nextNonce += 1;
        return response;
      } catch (e) {
        this.#nextNonce = undefined;
        throw e;
      }
    };
    const result = this.#queue.then(run, run);
    // The queue only orders sends; holding the last response would keep every pseudonym's last
    // transaction (its signature alone ~5 KB of ethers' hex ropes) for as long as its signer lives.
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * Sends signed bytes and builds the response from what the signer already knows. ethers'
 * broadcastTransaction recovers the sender from the signature (an elliptic-curve recovery, the
 * most expensive step of a send) and asks for the block number; a signer knows both are moot.
 */
async function broadcast(provider: JsonRpcProvider, signed: SignedTx, from: string): Promise<TransactionResponse> {
  const { tx } = signed;
  const hash = (await provider.send("eth_sendRawTransaction", [signed.serialized])) as string;
  if (hash.toLowerCase() !== signed.hash)
    throw new PetraError("TX_FAILED", `the node returned hash ${hash} for a transaction whose hash is ${signed.hash}`);
  return new TransactionResponse(
    {
      blockNumber: null,
      blockHash: null,
      hash: signed.hash,
      index: 0,
      type: tx.type ?? 0,
      to: tx.to,
      from,
      nonce: tx.nonce,
      gasLimit: tx.gasLimit,
      gasPrice: tx.gasPrice ?? tx.maxFeePerGas ?? 0n,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
      maxFeePerGas: tx.maxFeePerGas,
      maxFeePerBlobGas: null,
      data: tx.data,
      value: tx.value,
      chainId: tx.chainId,
      signature: tx.signature as Signature,
      accessList: tx.accessList,
      blobVersionedHashes: null,
      authorizationList: null,
    },
    provider,
  );
}

/** The market over a JSON-RPC node, reached through the agent's transport. */
export class LiveChain implements Chain {
  readonly marketAddress: string;
  readonly provider: JsonRpcProvider;
  readonly #clock: Clock;
  readonly #pollIntervalMs: number;
  #gasLimits?: (tx: TransactionRequest) => bigint | undefined;

  private constructor(opts: LiveChainOptions, provider: JsonRpcProvider) {
    this.marketAddress = opts.marketAddress;
    this.provider = provider;
    this.#clock = opts.clock;
    this.#pollIntervalMs = opts.pollIntervalMs ?? 100;
  }

  static async connect(opts: LiveChainOptions): Promise<LiveChain> {
    check(
      typeof opts.rpcUrl === "string" && /^https?:\/\//.test(opts.rpcUrl),
      "rpcUrl",
      `must be an http(s) URL, got "${opts.rpcUrl}"`,
    );
    check(
      /^0x[0-9a-fA-F]{40}$/.test(opts.marketAddress ?? ""),
      "marketAddress",
      `must be a 0x address, got "${opts.marketAddress}"`,
    );
    const pollIntervalMs = opts.pollIntervalMs ?? 100;
    check(
      Number.isFinite(pollIntervalMs) && pollIntervalMs > 0,
      "pollIntervalMs",
      `must be positive, got ${pollIntervalMs}`,
    );
    let chainId = opts.chainId;
    if (chainId === undefined) {
      const probe = opts.transport.jsonRpcProvider(opts.rpcUrl, opts.identity);
      try {
        chainId = Number(await probe.send("eth_chainId", []));
      } catch (e) {
        throw new PetraError(
          "RPC_UNAVAILABLE",
          `JSON-RPC node at ${opts.rpcUrl} did not answer eth_chainId`,
          { rpcUrl: opts.rpcUrl },
          { cause: e },
        );
      } finally {
        probe.destroy();
      }
    }
    const provider = opts.transport.jsonRpcProvider(opts.rpcUrl, opts.identity, {
      chainId,
      pollingIntervalMs: pollIntervalMs,
    });
    return new LiveChain({ ...opts, pollIntervalMs }, provider);
  }

  market(signer: Signer): EnergyMarket {
    return attachEnergyMarket(this.marketAddress, signer);
  }

  signer(privateKey: string): SerialNonceSigner {
    this.#gasLimits ??= marketGasLimits(this.marketAddress);
    return new SerialNonceSigner(privateKey, this.provider, { gasLimitFor: this.#gasLimits });
  }

  watchMarketLogs(opts: WatchOptions, onLogs: (logs: ChainLog[]) => void | Promise<void>): Cancel {
    check(
      Number.isInteger(opts.fromBlock) && opts.fromBlock >= 0,
      "fromBlock",
      `must be a block number, got ${opts.fromBlock}`,
    );
    let stopped = false;
    // Position of the last delivered log: a recreated filter may repeat logs, and those are skipped.
    let lastBlock = opts.fromBlock - 1;
    let lastIndex = Number.POSITIVE_INFINITY;
    const isNew = (l: ChainLog) => l.blockNumber > lastBlock || (l.blockNumber === lastBlock && l.logIndex > lastIndex);
    const deliver = async (raw: unknown[]) => {
      const logs = chainOrdered(raw, toChainLog).filter(isNew);
      if (logs.length === 0) return;
      const last = logs[logs.length - 1] as ChainLog;
      lastBlock = last.blockNumber;
      lastIndex = last.logIndex;
      await onLogs(logs);
    };
    const loop = async () => {
      let filterId: string | undefined;
      while (!stopped) {
        try {
          if (filterId === undefined) {
            const from = lastIndex === Number.POSITIVE_INFINITY ? lastBlock + 1 : lastBlock;
            filterId = (await this.provider.send("eth_newFilter", [
              { address: this.marketAddress, fromBlock: toQuantity(from) },
            ])) as string;
            // A new filter's changes start at its creation; the logs already in its range come from eth_getFilterLogs.
            await deliver((await this.provider.send("eth_getFilterLogs", [filterId])) as unknown[]);
          } else {
            await deliver((await this.provider.send("eth_getFilterChanges", [filterId])) as unknown[]);
          }
        } catch (e) {
          if (stopped) break;
          // Nodes drop idle or unknown filters (geth after 5 min, any node after a restart): start a new one.
          filterId = undefined;
          opts.onError?.(e);
        }
        if (!stopped) await this.#clock.sleep(this.#pollIntervalMs);
      }
      if (filterId !== undefined) this.provider.send("eth_uninstallFilter", [filterId]).catch(() => undefined);
    };
    void loop();
    return {
      cancel: () => {
        stopped = true;
      },
    };
  }

  async waitForReceipt(txHash: string): Promise<TransactionReceipt> {
    for (;;) {
      const receipt = await this.provider.getTransactionReceipt(txHash);
      if (receipt !== null) return receipt;
      await this.#clock.sleep(this.#pollIntervalMs);
    }
  }

  destroy(): void {
    this.provider.destroy();
  }
}

/** The logs `raw` holds (removed ones dropped), converted with `convert`, in chain order. */
export function chainOrdered(raw: readonly unknown[], convert: (raw: unknown) => ChainLog | undefined): ChainLog[] {
  return raw
    .map(convert)
    .filter((l): l is ChainLog => l !== undefined)
    .sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
}

export function toChainLog(raw: unknown): ChainLog | undefined {
  const r = raw as {
    removed?: boolean;
    blockNumber?: string;
    logIndex?: string;
    transactionHash?: string;
    topics?: string[];
    data?: string;
  };
  if (!r || r.removed || r.blockNumber == null || r.logIndex == null) return undefined;
  return {
    blockNumber: Number(r.blockNumber),
    logIndex: Number(r.logIndex),
    transactionHash: String(r.transactionHash),
    topics: r.topics ?? [],
    data: r.data ?? "0x",
  };
}
