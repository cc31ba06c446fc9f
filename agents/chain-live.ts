import {
  AbstractSigner,
  type JsonRpcProvider,
  type Provider,
  type Signature,
  type Signer,
  Transaction,
  type TransactionReceipt,
  type TransactionRequest,
  TransactionResponse,
  type TypedDataDomain,
  type TypedDataField,
  toQuantity,
  Wallet,
} from "ethers";
import { check, PetraError } from "../common/errors";
import type { EnergyMarket } from "../typechain-types";
import { attachEnergyMarket } from "./deploy-market";
import type { Cancel, Chain, ChainLog, Clock, Transport, WatchOptions } from "./interfaces";

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
 * A signer whose sends go out one at a time with nonces from its own counter. The counter is only
 * advanced by a send the node accepted; a send that fails (a revert found by gas estimation, a
 * rejected broadcast) resynchronises it from the node, so one failure never leaves a nonce gap
 * that would stall every later transaction (the failure mode of ethers' NonceManager).
 */
export class SerialNonceSigner extends AbstractSigner<JsonRpcProvider> {
  readonly #wallet: Wallet;
  #nextNonce: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(privateKey: string, provider: JsonRpcProvider) {
    super(provider);
    this.#wallet = new Wallet(privateKey);
  }

  get address(): string {
    return this.#wallet.address;
  }

  async getAddress(): Promise<string> {
    return this.#wallet.address;
  }

  connect(_provider: Provider | null): Signer {
    throw new PetraError(
      "INVALID_ARGUMENT",
      "provider: a SerialNonceSigner is bound to its chain's provider; ask the Chain for a new signer",
    );
  }

  signTransaction(tx: TransactionRequest): Promise<string> {
    return this.#wallet.signTransaction(tx);
  }

  signMessage(message: string | Uint8Array): Promise<string> {
    return this.#wallet.signMessage(message);
  }

  signTypedData(
    domain: TypedDataDomain,
    types: Record<string, Array<TypedDataField>>,
    value: Record<string, unknown>,
  ): Promise<string> {
    return this.#wallet.signTypedData(domain, types, value);
  }

  override sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    const run = async (): Promise<TransactionResponse> => {
      const provider = this.provider as JsonRpcProvider;
      if (this.#nextNonce === undefined) {
        this.#nextNonce = await provider.getTransactionCount(this.#wallet.address, "pending");
      }
      try {
        const populated = await this.populateTransaction({ ...tx, nonce: this.#nextNonce });
        const signed = await this.#wallet.signTransaction(populated);
        const response = await broadcast(provider, signed, this.#wallet.address);
        this.#nextNonce += 1;
        return response;
      } catch (e) {
        this.#nextNonce = undefined;
        throw e;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}

/**
 * Sends signed bytes and builds the response from what the signer already knows. ethers'
 * broadcastTransaction recovers the sender from the signature (an elliptic-curve recovery, the
 * most expensive step of a send) and asks for the block number; a signer knows both are moot.
 */
async function broadcast(provider: JsonRpcProvider, signed: string, from: string): Promise<TransactionResponse> {
  const tx = Transaction.from(signed);
  const hash = (await provider.send("eth_sendRawTransaction", [signed])) as string;
  if (hash.toLowerCase() !== (tx.hash as string).toLowerCase())
    throw new PetraError("TX_FAILED", `the node returned hash ${hash} for a transaction whose hash is ${tx.hash}`);
  return new TransactionResponse(
    {
      blockNumber: null,
      blockHash: null,
      hash: tx.hash as string,
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
    return new SerialNonceSigner(privateKey, this.provider);
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
