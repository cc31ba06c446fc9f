import {
  FeeData,
  JsonRpcProvider,
  Log,
  type LogParams,
  Network,
  type PerformActionRequest,
  type Signer,
  TransactionReceipt,
  type TransactionReceiptParams,
  toQuantity,
} from "ethers";
import { check } from "../../common/errors";
import type { Rng } from "../../common/rng";
import type { EnergyMarket } from "../../typechain-types";
import { chainOrdered, marketGasLimits, SerialNonceSigner, toChainLog } from "../chain-live";
import { attachEnergyMarket } from "../deploy-market";
import type { Cancel, Chain, ChainLog, Clock, WatchOptions } from "../interfaces";
import type { SimClock } from "./clock-sim";
import type { Delay } from "./distribution";
import { logParamsOf, receiptParamsOf } from "./receipt-format";
import type { SealedBlock, SimNode } from "./sim-node";

/** What Hardhat's eth_maxPriorityFeePerGas answers: 1 gwei. */
const PRIORITY_FEE_WEI = 1_000_000_000n;

const CHAIN_LOGS = new WeakMap<object, ChainLog | null>();

/**
 * One ChainLog object per log of a sealed block, shared by every watcher: converted once per
 * process, not once per household.
 */
function sharedChainLog(raw: unknown): ChainLog | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  let l = CHAIN_LOGS.get(raw);
  if (l === undefined) {
    l = toChainLog(raw) ?? null;
    CHAIN_LOGS.set(raw, l);
  }
  return l ?? undefined;
}

const BLOCK_MARKET_LOGS = new WeakMap<SealedBlock, Map<string, ChainLog[]>>();

/**
 * A sealed block's logs of `market` (lower case) in chain order, converted once per block and
 * shared by every watcher and the simulation's market book (read-only): a thousand households
 * otherwise filter, convert and sort the same logs.
 */
export function marketLogsOf(b: SealedBlock, market: string): ChainLog[] {
  let byMarket = BLOCK_MARKET_LOGS.get(b);
  if (byMarket === undefined) {
    byMarket = new Map();
    BLOCK_MARKET_LOGS.set(b, byMarket);
  }
  let logs = byMarket.get(market);
  if (logs === undefined) {
    logs = chainOrdered(
      b.logs.filter((l) => l.address.toLowerCase() === market),
      sharedChainLog,
    );
    byMarket.set(market, logs);
  }
  return logs;
}

/** One agent's path to the node: a round-trip latency distribution and the agent's own random stream. */
export class Link {
  constructor(
    readonly roundTrip: Delay,
    readonly rng: Rng,
  ) {}

  /** A one-way delay: half a round trip drawn from the distribution. */
  oneWay(): number {
    return this.roundTrip.sample(this.rng) / 2;
  }
}

/** What an RPC-side observer sees of one request (the simulated network observer). */
export interface SimRequest {
  identity: string;
  method: string;
  params: readonly unknown[];
  atMs: number;
}

/**
 * An ethers JsonRpcProvider whose requests go to the simulated node: each waits half a round trip
 * on the simulated clock, is served by the node, and waits the other half back. It overrides
 * `send`, below ethers' request batching and caching, which run on wall-clock timers.
 */
export class SimProvider extends JsonRpcProvider {
  readonly #node: SimNode;
  readonly #clock: SimClock;
  readonly #link: Link;
  readonly #identity: string;
  readonly #observe?: (r: SimRequest) => void;
  #nextId = 1;

  constructor(opts: {
    node: SimNode;
    clock: SimClock;
    link: Link;
    chainId: number;
    identity: string;
    observe?: (r: SimRequest) => void;
  }) {
    const network = Network.from(opts.chainId);
    super("http://simulated.invalid/", network, { staticNetwork: network, batchMaxCount: 1, cacheTimeout: -1 });
    this.#node = opts.node;
    this.#clock = opts.clock;
    this.#link = opts.link;
    this.#identity = opts.identity;
    this.#observe = opts.observe;
  }

  override async send(method: string, params: unknown[] | Record<string, unknown>): Promise<unknown> {
    const args = (Array.isArray(params) ? params : [params]) as unknown[];
    await this.#clock.sleep(this.#link.oneWay());
    this.#observe?.({ identity: this.#identity, method, params: args, atMs: this.#clock.now() });
    // The way back is drawn now, so the answer's time is fixed while the chain works on the
    // request, and the clock can run other agents' events until then (SimClock.track).
    const answerAt = this.#clock.nowExact() + this.#link.oneWay();
    let result: unknown;
    try {
      result = await this.#node.request(method, args, answerAt);
    } catch (e) {
      await this.#clock.sleepUntil(answerAt);
      // The shape ethers expects from a node's error reply, so revert data decodes as it does live.
      const err = e as { code?: number; message?: string; data?: unknown };
      const id = this.#nextId++;
      throw this.getRpcError(
        { method, params: args, id, jsonrpc: "2.0" },
        { id, error: { code: err.code ?? -32603, message: err.message ?? String(e), data: err.data } },
      );
    }
    await this.#clock.sleepUntil(answerAt);
    return result;
  }

  /**
   * Fee data as ethers computes it (maxFee = 2 x base fee + priority fee), from the latest sealed
   * block the node already holds, after one round trip: ethers makes its three calls in parallel,
   * so they cost one round trip too, and the chain saves two calls per transaction.
   */
  override async getFeeData(): Promise<FeeData> {
    await this.#clock.sleep(this.#link.oneWay());
    const base = this.#node.baseFeePerGas;
    await this.#clock.sleep(this.#link.oneWay());
    return new FeeData(base + PRIORITY_FEE_WEI, base * 2n + PRIORITY_FEE_WEI, PRIORITY_FEE_WEI);
  }

  /** As ethers builds it, with the request's block tag on eth_estimateGas, which ethers leaves off. */
  override getRpcRequest(req: PerformActionRequest): null | { method: string; args: unknown[] } {
    const r = super.getRpcRequest(req);
    if (r !== null && req.method === "estimateGas" && req.transaction.blockTag != null)
      r.args.push(req.transaction.blockTag);
    return r;
  }

  /** As ethers wraps a receipt, with its formatting done faster (agents/sim/receipt-format.ts). */
  override _wrapTransactionReceipt(value: TransactionReceiptParams, network: Network): TransactionReceipt {
    const params = receiptParamsOf(value);
    return params === undefined ? super._wrapTransactionReceipt(value, network) : new TransactionReceipt(params, this);
  }

  /** As ethers wraps a log of eth_getLogs, with its formatting done faster. */
  override _wrapLog(value: LogParams, network: Network): Log {
    const params = logParamsOf(value);
    return params === undefined ? super._wrapLog(value, network) : new Log(params, this);
  }

  override _send(): never {
    throw new Error("SimProvider: requests go through send()");
  }
}

/**
 * The market as an agent sees it in simulated mode. Logs arrive as a node subscription would
 * push them: once per sealed block, after a one-way delay; receipts as soon as the transaction's
 * block is sealed, fetched over the agent's link.
 */
export class SimChain implements Chain {
  readonly marketAddress: string;
  readonly provider: SimProvider;
  readonly #node: SimNode;
  readonly #clock: Clock;
  readonly #link: Link;
  readonly #market: string;
  readonly #gasLimits: ReturnType<typeof marketGasLimits>;

  constructor(opts: { node: SimNode; clock: Clock; provider: SimProvider; link: Link; marketAddress: string }) {
    check(
      /^0x[0-9a-fA-F]{40}$/.test(opts.marketAddress),
      "marketAddress",
      `must be a 0x address, got "${opts.marketAddress}"`,
    );
    this.marketAddress = opts.marketAddress;
    this.provider = opts.provider;
    this.#node = opts.node;
    this.#clock = opts.clock;
    this.#link = opts.link;
    this.#market = opts.marketAddress.toLowerCase();
    this.#gasLimits = marketGasLimits(opts.marketAddress);
  }

  market(signer: Signer): EnergyMarket {
    return attachEnergyMarket(this.marketAddress, signer);
  }

  /**
   * A signer with the market's fixed gas limits, as live mode has, and a pending nonce from the
   * node's latest state plus what the node knows was sent: the node itself would answer a
   * "pending" query by executing its whole mempool, which grows with the number of households.
   */
  signer(privateKey: string): SerialNonceSigner {
    const node = this.#node;
    return new SerialNonceSigner(privateKey, this.provider, {
      gasLimitFor: this.#gasLimits,
      pendingNonce: async (address) =>
        node.pendingNonceAfter(address, await this.provider.getTransactionCount(address, "latest")),
      onSent: (t) => node.noteSent(t.from, t.nonce, t.hash),
    });
  }

  watchMarketLogs(opts: WatchOptions, onLogs: (logs: ChainLog[]) => void | Promise<void>): Cancel {
    check(
      Number.isInteger(opts.fromBlock) && opts.fromBlock >= 0,
      "fromBlock",
      `must be a block number, got ${opts.fromBlock}`,
    );
    let stopped = false;
    // Handlers run one at a time and in block order, as the live watcher delivers them.
    let chain: Promise<void> = Promise.resolve();
    const deliverOrdered = (logs: ChainLog[]) => {
      if (logs.length === 0) return;
      chain = chain.then(async () => {
        if (!stopped) await onLogs(logs);
      });
    };
    const deliver = (raw: unknown[]) => deliverOrdered(chainOrdered(raw, sharedChainLog));
    // Subscribe first, so no block sealed while the history is fetched is lost.
    const upTo = this.#node.latestBlock;
    const pending: SealedBlock[] = [];
    let historyDone = false;
    // A node pushes blocks in order over one connection: a block sealed right after another (blocks
    // can be a millisecond apart) must not overtake it on a shorter draw of the link's delay, or
    // the watcher, which skips logs at or before the last it applied, would lose the earlier block.
    let lastDeliveryAt = Number.NEGATIVE_INFINITY;
    const forward = (b: SealedBlock) => {
      const mine = marketLogsOf(b, this.#market);
      if (mine.length === 0) return;
      lastDeliveryAt = Math.max(lastDeliveryAt, this.#clock.now() + this.#link.oneWay());
      this.#clock.schedule(lastDeliveryAt, () => {
        if (!stopped) deliverOrdered(mine);
      });
    };
    const sub = this.#node.onBlock((b) => {
      if (historyDone) forward(b);
      else pending.push(b);
    });
    const history =
      upTo >= opts.fromBlock
        ? (this.provider.send("eth_getLogs", [
            { address: this.marketAddress, fromBlock: toQuantity(opts.fromBlock), toBlock: toQuantity(upTo) },
          ]) as Promise<unknown[]>)
        : Promise.resolve([]);
    history.then(
      (logs) => {
        if (stopped) return;
        deliver(logs);
        historyDone = true;
        for (const b of pending.splice(0)) forward(b);
      },
      (e) => opts.onError?.(e),
    );
    return {
      cancel: () => {
        stopped = true;
        sub.cancel();
      },
    };
  }

  async waitForReceipt(txHash: string): Promise<TransactionReceipt> {
    await this.#node.whenMined(txHash);
    await this.#clock.sleep(this.#link.oneWay());
    const receipt = await this.provider.getTransactionReceipt(txHash);
    check(receipt !== null, "txHash", `${txHash} is mined but the node has no receipt for it`);
    return receipt;
  }
}
