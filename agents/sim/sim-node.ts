import { toQuantity } from "ethers";
import { check, PetraError } from "../../common/errors";
import type { Rng } from "../../common/rng";
import { DEV_MNEMONIC } from "../dev-accounts";
import type { Cancel } from "../interfaces";
import { decodeRawTxFields, txHashOf } from "../tx-encoding";
import type { SimClock } from "./clock-sim";
import type { Delay } from "./distribution";

/** An EIP-1193 provider: the in-process Hardhat network (EDR), or anything that speaks JSON-RPC objects. */
export interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
  /**
   * Several calls in one round trip, run in order; rejects if any of them failed (EDR then has run
   * the calls before the failing one, and none after it).
   */
  requestBatch?(calls: { method: string; params: unknown[] }[]): Promise<unknown[]>;
}

/** A log as eth_getLogs returns it. */
export interface RawLog {
  address: string;
  blockNumber: string;
  logIndex: string;
  transactionHash: string;
  topics: string[];
  data: string;
  removed?: boolean;
}

/** A transaction as eth_getBlockByNumber(.., true) returns it (the fields the ledger reads). */
export interface RawTransaction {
  hash: string;
  from: string;
  to: string | null;
  value: string;
  nonce: string;
  input: string;
  gasPrice?: string;
}

/** A receipt as eth_getTransactionReceipt returns it (the fields the node and the ledger read). */
export interface RawReceipt {
  transactionHash: string;
  from: string;
  status?: string | null;
  gasUsed: string;
  effectiveGasPrice?: string;
  gasPrice?: string;
  logs: RawLog[];
}

export interface SealedBlock {
  number: number;
  timestampS: number;
  txHashes: string[];
  /** The block's transactions and their receipts, in block order. */
  transactions: RawTransaction[];
  receipts: RawReceipt[];
  /** Every log of the block, in order. */
  logs: RawLog[];
}

/**
 * Calls that mine or rewrite state behind #seal's back (automine only when switched on): after
 * one, the node no longer knows every sender's nonce and asks the chain.
 */
const STATE_CHANGERS = new Set([
  "evm_mine",
  "hardhat_mine",
  "evm_setAutomine",
  "evm_revert",
  "hardhat_reset",
  "hardhat_setNonce",
  "anvil_mine",
  "anvil_setNonce",
  "anvil_reset",
  "anvil_setAutomine",
]);

/**
 * Blocks whose receipts the node answers from memory. Agents ask for a receipt within a few block
 * times of its block (their own transactions, the DSO's mints); older ones go to the chain.
 */
const RECENT_RECEIPT_BLOCKS = 64;

/** The most queued eth_sendRawTransaction calls the node forwards to the chain in one batch. */
const MAX_RAW_BATCH = 256;

/** A call waiting its turn at the chain: run when its turn comes, or a signed transaction to forward. */
interface Job {
  run?: () => Promise<unknown>;
  /** eth_sendRawTransaction's signed bytes, and their hash (what the chain answers if it accepts them). */
  raw?: { bytes: string; hash: string };
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Accounts and limits of the simulated chain (simNetworkConfig turns them into Hardhat's network config). */
export interface SimChainSpec {
  chainId: number;
  /** Genesis time; block timestamps are this plus simulated seconds, so they do not depend on the wall clock. */
  genesisDate: string;
  blockGasLimit: number;
  mnemonic: string;
  accountCount: number;
  accountBalanceWei: bigint;
}

export const DEFAULT_SIM_CHAIN: SimChainSpec = {
  chainId: 31337,
  genesisDate: "2025-06-02T00:00:00.000Z",
  // Room for a whole interval's mint batch of a 1,000-household grid in one block.
  blockGasLimit: 120_000_000,
  mnemonic: DEV_MNEMONIC,
  accountCount: 4,
  // Enough to gas-fund a fresh address per household per interval for a long day.
  accountBalanceWei: 10n ** 30n,
};

/**
 * The chain of a simulated run: the in-process Hardhat network with automine off. Calls are
 * queued and run one at a time, in the order agents make them, and the clock waits for each
 * (SimClock.track): with no other source of concurrency, a run is deterministic. Blocks are
 * sealed only by `mine()`, at simulated times the block-time model draws.
 */
export class SimNode {
  readonly #provider: Eip1193;
  readonly #clock: SimClock;
  readonly #genesisS: number;
  /** Calls in the order agents made them; #pump runs them one at a time. */
  readonly #jobs: Job[] = [];
  #pumping = false;
  #latest = 0;
  #latestTimestampS: number;
  #baseFeePerGas = 0n;
  readonly #mined = new Set<string>();
  /** Receipts of the last RECENT_RECEIPT_BLOCKS blocks by hash, and the hashes by block to evict them. */
  readonly #receipts = new Map<string, RawReceipt>();
  readonly #receiptBlocks: string[][] = [];
  /** Blocks being sealed (mined but not yet read back). */
  #sealing = 0;
  /** Sender -> (hash -> nonce) of transactions sent through noteSent and not yet in a block. */
  readonly #pendingBySender = new Map<string, Map<string, number>>();
  readonly #senderOf = new Map<string, string>();
  readonly #waiters = new Map<string, (() => void)[]>();
  readonly #listeners = new Set<(b: SealedBlock) => void>();
  #calls = 0;
  readonly #callsByMethod = new Map<string, { calls: number; wallMs: number }>();
  #txs = 0;
  /** Signed bytes of the transactions this node forwarded and no block holds yet, by hash. */
  readonly #sentRaw = new Map<string, string>();
  /** Whether the chain answers eth_getBlockReceipts (undefined until the first block with transactions). */
  #hasBlockReceipts: boolean | undefined;
  /**
   * Each sender's nonce after the latest sealed block, from the blocks this node sealed: valid
   * while every block since genesis was sealed by #seal (the chain started fresh, and nothing
   * else mined or rewrote state since).
   */
  readonly #latestNonce = new Map<string, number>();
  #knowsNonces = false;

  private constructor(provider: Eip1193, clock: SimClock, genesisS: number) {
    this.#provider = provider;
    this.#clock = clock;
    this.#genesisS = genesisS;
    this.#latestTimestampS = genesisS;
  }

  /**
   * Starts on `provider`, a fresh chain (block 0 at `genesisDate`): switches automine off and
   * reads the head.
   */
  static async start(provider: Eip1193, clock: SimClock, genesisDate: string): Promise<SimNode> {
    const genesisS = Math.floor(Date.parse(genesisDate) / 1000);
    check(Number.isFinite(genesisS), "genesisDate", `must be an ISO date, got "${genesisDate}"`);
    const node = new SimNode(provider, clock, genesisS);
    await node.request("evm_setAutomine", [false]);
    const head = (await node.request("eth_getBlockByNumber", ["latest", false])) as {
      number: string;
      timestamp: string;
      baseFeePerGas?: string;
    };
    node.#latest = Number(head.number);
    node.#knowsNonces = node.#latest === 0;
    node.#baseFeePerGas = BigInt(head.baseFeePerGas ?? 0);
    node.#latestTimestampS = Number(head.timestamp);
    return node;
  }

  get latestBlock(): number {
    return this.#latest;
  }

  /** Base fee of the latest sealed block, wei. */
  get baseFeePerGas(): bigint {
    return this.#baseFeePerGas;
  }

  /**
   * JSON-RPC calls served so far, and transactions mined; per method, the calls and the wall time
   * the chain took to answer them (a measurement only: nothing simulated depends on it).
   */
  get stats(): {
    calls: number;
    callsByMethod: Record<string, { calls: number; wallMs: number }>;
    transactions: number;
  } {
    const byMethod = [...this.#callsByMethod]
      .sort((a, b) => b[1].wallMs - a[1].wallMs)
      .map(([m, c]) => [m, { calls: c.calls, wallMs: Math.round(c.wallMs) }]);
    return { calls: this.#calls, callsByMethod: Object.fromEntries(byMethod), transactions: this.#txs };
  }

  /** Wall time the chain has taken answering calls so far, ms (the sum over stats.callsByMethod, unrounded). */
  get chainWallMs(): number {
    let ms = 0;
    for (const c of this.#callsByMethod.values()) ms += c.wallMs;
    return ms;
  }

  /**
   * Queues a call. With `answerAtMs`, the clock may run events before that simulated time while
   * the chain works on it (the caller delivers the answer then); without, the clock waits for it.
   */
  request(method: string, params: unknown[] = [], answerAtMs?: number): Promise<unknown> {
    return this.#request(method, params, false, answerAtMs);
  }

  #request(method: string, params: unknown[], toChain: boolean, answerAtMs?: number): Promise<unknown> {
    this.#calls++;
    if (method === "eth_sendRawTransaction" && typeof params[0] === "string" && /^0x[0-9a-fA-F]+$/.test(params[0])) {
      const bytes = params[0];
      return this.#push({ raw: { bytes, hash: txHashOf(bytes) } }, answerAtMs);
    }
    const askReceipt = !toChain && method === "eth_getTransactionReceipt";
    const askNonce = !toChain && method === "eth_getTransactionCount" && params[1] === "latest";
    if (!toChain && STATE_CHANGERS.has(method) && params[0] !== false) this.#knowsNonces = false;
    const run = async () => {
      // Answered as the chain would answer it: a receipt it just sealed, or none for a hash in no
      // block; a nonce as of the latest block (a simulated day asks once per pseudonym: 96,000 calls).
      const known = askReceipt ? this.#knownReceipt(params[0]) : askNonce ? this.#knownNonce(params[0]) : undefined;
      if (known !== undefined) {
        this.#count(`${method} (from the node's memory)`).calls++;
        return known;
      }
      const timed = this.#count(method);
      timed.calls++;
      const t0 = performance.now();
      try {
        return await this.#provider.request({ method, params });
      } finally {
        timed.wallMs += performance.now() - t0;
      }
    };
    return this.#enqueue(run, answerAtMs);
  }

  /** Runs `run` after every call queued before it, and has the clock track it (SimClock.track). */
  #enqueue<T>(run: () => Promise<T>, answerAtMs?: number): Promise<T> {
    return this.#push({ run }, answerAtMs) as Promise<T>;
  }

  #push(job: Omit<Job, "resolve" | "reject">, answerAtMs?: number): Promise<unknown> {
    const result = new Promise<unknown>((resolve, reject) => this.#jobs.push({ ...job, resolve, reject }));
    void this.#pump();
    return this.#clock.track(result, answerAtMs);
  }

  /**
   * Runs the queued calls one at a time, in order. Signed transactions queued back to back go to
   * the chain in one batch: while EDR works on one call, agents queue more (a block's reactions
   * arrive together), and a batch costs EDR about 0.2 ms a transaction against 0.4 ms for one
   * call each (measured on plain transfers), and the main thread one JSON round trip instead of
   * one per transaction. The answers are the ones separate calls would get (#forwardRaw).
   */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    // Jobs start on a later tick, as they did on a promise chain: a call's turn never runs inside
    // the agent code that made it.
    await Promise.resolve();
    try {
      for (let job = this.#jobs[0]; job !== undefined; job = this.#jobs[0]) {
        if (job.raw !== undefined) {
          await this.#forwardRaw(this.#takeRawBatch());
          continue;
        }
        this.#jobs.shift();
        try {
          job.resolve(await (job.run as () => Promise<unknown>)());
        } catch (e) {
          job.reject(e);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * The signed transactions at the head of the queue, up to the first other call, MAX_RAW_BATCH,
   * or a transaction the chain has seen (its hash sent or mined before, or twice in the batch):
   * the chain refuses that one as known, and only a call of its own gets that answer.
   */
  #takeRawBatch(): Job[] {
    const batch: Job[] = [];
    const hashes = new Set<string>();
    // A chain without batches (anvil) takes them one call each.
    const most = this.#provider.requestBatch === undefined ? 1 : MAX_RAW_BATCH;
    for (let job = this.#jobs[0]; job?.raw !== undefined && batch.length < most; job = this.#jobs[0]) {
      const h = job.raw.hash;
      const seen = hashes.has(h) || this.#sentRaw.has(h) || this.#mined.has(h);
      if (seen && batch.length > 0) break;
      this.#jobs.shift();
      batch.push(job);
      hashes.add(h);
      if (seen) break;
    }
    return batch;
  }

  /**
   * Forwards signed transactions, answering each as a call of its own would be answered. A batch
   * that fails has run its transactions up to the failing one (EDR runs a batch in order and
   * stops at the first failure): those the chain now holds are answered with their hash, and the
   * rest, the failing one first, are sent again one by one, in order, for their own answers. None
   * of them was known to the chain before (#takeRawBatch), so holding one means accepting it; and
   * the chain state each is sent on is the one it would have met in a call of its own.
   */
  async #forwardRaw(batch: Job[]): Promise<void> {
    const one = async (job: Job) => {
      try {
        job.resolve(await this.#sendRawNow((job.raw as { bytes: string }).bytes));
      } catch (e) {
        job.reject(e);
      }
    };
    if (batch.length === 1) return one(batch[0] as Job);
    try {
      await this.#forwardRawBatch(batch, one);
    } catch (e) {
      // Only if the chain failed while the node read its pool: every job still waiting gets the
      // failure (a promise settles once, so those answered keep their answer) instead of never
      // settling, which would stall the clock.
      for (const job of batch) job.reject(e);
    }
  }

  async #forwardRawBatch(batch: Job[], one: (job: Job) => Promise<void>): Promise<void> {
    const timed = this.#count("eth_sendRawTransaction (batched)");
    timed.calls += batch.length;
    const t0 = performance.now();
    let answers: unknown[] | undefined;
    try {
      answers = await (this.#provider.requestBatch as NonNullable<Eip1193["requestBatch"]>)(
        batch.map((j) => ({ method: "eth_sendRawTransaction", params: [(j.raw as { bytes: string }).bytes] })),
      );
    } catch {
      answers = undefined;
    } finally {
      timed.wallMs += performance.now() - t0;
    }
    if (answers !== undefined) {
      batch.forEach((job, i) => {
        const out = answers[i];
        const raw = job.raw as { bytes: string; hash: string };
        if (typeof out === "string" && out.toLowerCase() === raw.hash) {
          this.#sentRaw.set(raw.hash, raw.bytes);
          job.resolve(out);
        } else job.reject(new PetraError("RPC_UNAVAILABLE", `the chain answered ${String(out)} for ${raw.hash}`));
      });
      return;
    }
    // In order: what the chain holds was accepted; the others get a call of their own.
    for (const job of batch) {
      const raw = job.raw as { bytes: string; hash: string };
      const held = await this.#provider.request({ method: "eth_getTransactionByHash", params: [raw.hash] });
      if (held == null) {
        await one(job);
        continue;
      }
      this.#sentRaw.set(raw.hash, raw.bytes);
      job.resolve(raw.hash);
    }
  }

  /** One eth_sendRawTransaction call, timed. */
  async #sendRawNow(bytes: string): Promise<unknown> {
    const timed = this.#count("eth_sendRawTransaction");
    timed.calls++;
    const t0 = performance.now();
    try {
      const out = await this.#provider.request({ method: "eth_sendRawTransaction", params: [bytes] });
      if (typeof out === "string") this.#sentRaw.set(out.toLowerCase(), bytes);
      return out;
    } finally {
      timed.wallMs += performance.now() - t0;
    }
  }

  #count(method: string): { calls: number; wallMs: number } {
    let entry = this.#callsByMethod.get(method);
    if (entry === undefined) {
      entry = { calls: 0, wallMs: 0 };
      this.#callsByMethod.set(method, entry);
    }
    return entry;
  }

  /**
   * The receipt of `hash` if the node can answer without the chain: the receipt of a recent block,
   * or null for a hash in no block (the node sealed every block, so it knows). Undefined: ask the chain.
   */
  #knownReceipt(hash: unknown): RawReceipt | null | undefined {
    // While a block is being read, the chain has receipts the node has not taken in yet.
    if (typeof hash !== "string" || this.#sealing > 0) return undefined;
    const key = hash.toLowerCase();
    const r = this.#receipts.get(key);
    if (r !== undefined) return r;
    return this.#mined.has(key) ? undefined : null;
  }

  /** `address`'s nonce as of the latest block, if the node knows it (else undefined: ask the chain). */
  #knownNonce(address: unknown): string | undefined {
    if (typeof address !== "string" || !this.#knowsNonces || this.#sealing > 0) return undefined;
    return toQuantity(this.#latestNonce.get(address.toLowerCase()) ?? 0);
  }

  /**
   * Seals a block now: its timestamp is genesis plus the simulated time in whole seconds; it holds
   * what the mempool has, up to the gas limit. Listeners and receipt waiters hear of it at once
   * (their own latency is theirs to add). The node reads the block's transactions and receipts
   * once, here: agents' receipt requests are then answered from memory, and the run's ledger is
   * built from the blocks as they are sealed instead of read back from the chain at the end.
   */
  async mine(): Promise<SealedBlock> {
    const ts = Math.max(this.#latestTimestampS, this.#genesisS + Math.floor(this.#clock.now() / 1000));
    await this.request("evm_setNextBlockTimestamp", [ts]);
    this.#sealing++;
    try {
      return await this.#seal();
    } finally {
      this.#sealing--;
    }
  }

  async #seal(): Promise<SealedBlock> {
    await this.#request("evm_mine", [], true);
    const header = (await this.request("eth_getBlockByNumber", ["latest", false])) as {
      number: string;
      timestamp: string;
      baseFeePerGas?: string;
      transactions: string[];
    };
    const number = Number(header.number);
    this.#baseFeePerGas = BigInt(header.baseFeePerGas ?? 0);
    const hashes = header.transactions;
    const receipts = await this.#blockReceipts(header.number, hashes);
    receipts.forEach((r, i) => {
      check(r !== null, "receipt", `block ${number} holds ${hashes[i]} but the chain has no receipt for it`);
    });
    const block = {
      ...header,
      transactions: await this.#blockTransactions(header.number, hashes, receipts as RawReceipt[]),
    };
    const logs = (receipts as RawReceipt[]).flatMap((r) => r.logs);
    this.#latest = number;
    this.#latestTimestampS = Number(block.timestamp);
    this.#txs += block.transactions.length;
    const sealed: SealedBlock = {
      number,
      timestampS: this.#latestTimestampS,
      txHashes: hashes,
      transactions: block.transactions,
      receipts: receipts as RawReceipt[],
      logs,
    };
    for (const t of block.transactions) {
      const from = t.from.toLowerCase();
      this.#latestNonce.set(from, Math.max(this.#latestNonce.get(from) ?? 0, Number(t.nonce) + 1));
    }
    const keys = hashes.map((h) => h.toLowerCase());
    keys.forEach((k, i) => {
      this.#receipts.set(k, receipts[i] as RawReceipt);
    });
    this.#receiptBlocks.push(keys);
    if (this.#receiptBlocks.length > RECENT_RECEIPT_BLOCKS) {
      for (const k of this.#receiptBlocks.shift() as string[]) this.#receipts.delete(k);
    }
    for (const key of keys) {
      this.#mined.add(key);
      const sender = this.#senderOf.get(key);
      if (sender !== undefined) {
        this.#senderOf.delete(key);
        const mine = this.#pendingBySender.get(sender);
        mine?.delete(key);
        if (mine?.size === 0) this.#pendingBySender.delete(sender);
      }
      const waiting = this.#waiters.get(key);
      if (waiting) {
        this.#waiters.delete(key);
        for (const w of waiting) w();
      }
    }
    for (const l of this.#listeners) l(sealed);
    return sealed;
  }

  /**
   * The receipts of a block's transactions, in block order: one eth_getBlockReceipts where the
   * chain has it (anvil; a call per transaction costs anvil half a millisecond of JSON over HTTP),
   * else one batch of eth_getTransactionReceipt (EDR), else one call each, queued together so that
   * no agent's request lands between them.
   */
  async #blockReceipts(blockNumber: string, hashes: string[]): Promise<(RawReceipt | null)[]> {
    if (hashes.length === 0) return [];
    if (this.#hasBlockReceipts !== false) {
      try {
        const all = (await this.#request("eth_getBlockReceipts", [blockNumber], true)) as RawReceipt[] | null;
        this.#hasBlockReceipts = true;
        const byHash = new Map((all ?? []).map((r) => [r.transactionHash.toLowerCase(), r]));
        return hashes.map((h) => byHash.get(h.toLowerCase()) ?? null);
      } catch (e) {
        // Only a chain without the method falls back; any other failure is the chain's and is reported.
        if (
          this.#hasBlockReceipts === true ||
          !/not supported|does not exist|not found|unknown method/i.test(String(e))
        )
          throw e;
        this.#hasBlockReceipts = false;
      }
    }
    if (this.#provider.requestBatch !== undefined)
      return (await this.#batch(
        "eth_getTransactionReceipt",
        hashes.map((h) => [h]),
      )) as (RawReceipt | null)[];
    return (await Promise.all(
      hashes.map((h) => this.#request("eth_getTransactionReceipt", [h], true)),
    )) as (RawReceipt | null)[];
  }

  /** One batch of calls to `method`, queued like any call, and waited for by the clock. */
  #batch(method: string, paramsList: unknown[][]): Promise<unknown[]> {
    const batch = this.#provider.requestBatch?.bind(this.#provider);
    check(batch !== undefined, "provider", "does not answer batches");
    this.#calls += paramsList.length;
    const run = async () => {
      const timed = this.#count(`${method} (batched)`);
      timed.calls += paramsList.length;
      const t0 = performance.now();
      try {
        return await batch(paramsList.map((params) => ({ method, params })));
      } finally {
        timed.wallMs += performance.now() - t0;
      }
    };
    return this.#enqueue(run);
  }

  /**
   * A block's transactions as the ledger reads them, from the signed bytes this node forwarded
   * (decoded, with the sender from the receipt): a block with whole transactions costs anvil
   * ~10 ms of JSON per hundred. A block holding a transaction that did not pass through this
   * node is read whole from the chain.
   */
  async #blockTransactions(blockNumber: string, hashes: string[], receipts: RawReceipt[]): Promise<RawTransaction[]> {
    const keys = hashes.map((h) => h.toLowerCase());
    if (keys.every((k) => this.#sentRaw.has(k))) {
      return keys.map((k, i) => {
        const raw = this.#sentRaw.get(k) as string;
        this.#sentRaw.delete(k);
        const f = decodeRawTxFields(raw);
        return {
          hash: hashes[i] as string,
          from: (receipts[i] as RawReceipt).from,
          to: f.to,
          value: toQuantity(f.value),
          nonce: toQuantity(f.nonce),
          input: f.input,
        };
      });
    }
    const block = (await this.#request("eth_getBlockByNumber", [blockNumber, true], true)) as {
      transactions: RawTransaction[];
    };
    for (const k of keys) this.#sentRaw.delete(k);
    return block.transactions;
  }

  /**
   * Records a transaction the node accepted from `from`, so that pendingNonceAfter can answer
   * without asking the node about its pending state (which makes it execute the whole mempool).
   */
  noteSent(from: string, nonce: number, hash: string): void {
    const sender = from.toLowerCase();
    const key = hash.toLowerCase();
    if (this.#mined.has(key)) return;
    let mine = this.#pendingBySender.get(sender);
    if (mine === undefined) {
      mine = new Map();
      this.#pendingBySender.set(sender, mine);
    }
    mine.set(key, nonce);
    this.#senderOf.set(key, sender);
  }

  /** The nonce after `from`'s noted transactions still in the mempool, or `latestCount` if none is higher. */
  pendingNonceAfter(from: string, latestCount: number): number {
    let next = latestCount;
    for (const n of this.#pendingBySender.get(from.toLowerCase())?.values() ?? []) next = Math.max(next, n + 1);
    return next;
  }

  /** Called with every block sealed from now on. */
  onBlock(listener: (b: SealedBlock) => void): Cancel {
    this.#listeners.add(listener);
    return { cancel: () => this.#listeners.delete(listener) };
  }

  /** Resolves when `txHash` is in a sealed block (at once if it already is). */
  whenMined(txHash: string): Promise<void> {
    const key = txHash.toLowerCase();
    if (this.#mined.has(key)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.#waiters.get(key);
      if (list) list.push(resolve);
      else this.#waiters.set(key, [resolve]);
    });
  }

  /** Seals blocks at times drawn from `blockTime` until stopped. */
  produceBlocks(blockTime: Delay, rng: Rng, onError?: (e: unknown) => void): { stop(): void } {
    let stopped = false;
    let timer: Cancel | undefined;
    const next = () => {
      // A zero block time would seal blocks forever at one instant.
      const gap = Math.max(1, blockTime.sample(rng));
      timer = this.#clock.schedule(this.#clock.now() + gap, () => {
        if (stopped) return;
        this.mine().then(
          () => {
            if (!stopped) next();
          },
          (e) => {
            onError?.(new PetraError("RPC_UNAVAILABLE", `sealing a block failed: ${String(e)}`, {}, { cause: e }));
            if (!stopped) next();
          },
        );
      });
    };
    next();
    return {
      stop: () => {
        stopped = true;
        timer?.cancel();
      },
    };
  }
}
