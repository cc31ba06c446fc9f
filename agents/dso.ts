import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";
import {
  getAddress,
  getBytes,
  isError as isEthersError,
  type Provider,
  type TransactionReceipt,
  type Wallet,
  ZeroAddress,
} from "ethers";
import { check, PetraError, revertDataOf } from "../common/errors";
import { EnergyMarket__factory } from "../typechain-types";
import type { AccountBook, BatchMember, BookEvent, RequestRow, SignedTx, StoredBatch } from "./account-book";
import { checkWithdrawal, DEFAULT_MAX_REQUEST_INTERVALS, usageOf } from "./dso-policy";
import { DEFAULT_MAX_ENVELOPE_BYTES, type Envelope, openEnvelope, type SigningKey, sealEnvelope } from "./envelope";
import type { Household, HouseholdRegistry } from "./household-registry";
import type { Clock, MessageSockets, RouterSocket } from "./interfaces";
import { decodeMarketLog, describeMarketError, marketErrorOf } from "./market-log";
import type { DsoMessage, FailureReason, WithdrawAssets } from "./messages";
import { signTransactionWith } from "./tx-encoding";
import { zmqSockets } from "./zmq-sockets";

/**
 * The DSO agent: a ZeroMQ ROUTER that takes signed withdrawal requests from households, checks
 * them against the registry and the safety policy, reserves them in the account book, mints in
 * batches (addEnergyAssets / addFinancialBalances, one transaction each per batch), and credits
 * households for what their anonymous addresses deposit back, read from the market's logs.
 *
 * Every refusal is a signed failedWithdrawal naming the reason; nothing a peer sends stops the
 * loop. Minting is exactly-once across crashes: see AccountBook for the two rules it rests on.
 *
 * Mint transactions are signed here with explicit nonces rather than through a nonce-managing
 * signer, because their raw bytes must be stored before broadcast (that is what makes a restart
 * safe). The DSO key must therefore be used by this process alone while it runs.
 */
export interface DsoOptions {
  /** ZeroMQ endpoint to bind, e.g. "tcp://127.0.0.1:5555"; "tcp://127.0.0.1:*" picks a free port. */
  endpoint: string;
  registry: HouseholdRegistry;
  book: AccountBook;
  /** Any ethers provider: a JSON-RPC node in live mode, the in-process Hardhat chain in tests. */
  provider: Provider;
  /** The market's DSO account (or an authorised minter); must be connected to `provider`. */
  wallet: Wallet;
  marketAddress: string;
  chainId: number;
  /** The DSO's long-term Ed25519 key; households verify replies against its public key. */
  signingKey: SigningKey;
  clock: Clock;
  /** How the ROUTER is opened. Default: a real ZeroMQ socket (agents/zmq-sockets.ts). */
  sockets?: MessageSockets;
  /** Envelopes whose timestamp is further than this from the DSO's clock are refused. Default 30 000. */
  maxClockSkewMs?: number;
  /** Requests per mint batch. Default 64. */
  maxBatchRequests?: number;
  /** Energy assets per mint batch (bounds the transaction's gas). Default 256. */
  maxBatchAssets?: number;
  /** Wei sent once to each new anonymous address whose request sets fundGas; 0 disables ("dso" gas mode off). Default 0. */
  gasFundingWei?: bigint;
  /** Cap on asset-intervals in one request. Default DEFAULT_MAX_REQUEST_INTERVALS. */
  maxRequestIntervals?: number;
  maxEnvelopeBytes?: number;
  /** Log watcher period. Default 250. */
  logPollIntervalMs?: number;
  /** Receipt polling period. Default 50. */
  receiptPollIntervalMs?: number;
  /** Wait after a failed RPC call before retrying. Default 500. */
  retryDelayMs?: number;
  /** First block the log watcher reads when the book has no cursor yet. Default 0. */
  fromBlock?: number;
  /** Blocks per eth_getLogs call. Default 2000. */
  maxLogRangeBlocks?: number;
  /** Diagnostics (RPC hiccups, send failures). Default: ignore. */
  onError?: (error: unknown) => void;
}

export interface DsoStats {
  received: number;
  refused: Partial<Record<FailureReason, number>>;
  accepted: number;
  batches: number;
  mintedRequests: number;
}

const MARKET = EnergyMarket__factory.createInterface();

/**
 * Gas each kind of mint transaction may use, as a fixed part plus a part per item (asset, address
 * credited, address funded): the worst case, every item writing fresh storage or creating an
 * account, measured in gas-snapshot.json (addEnergyAssets x10 531,536; addFinancialBalances x10
 * 272,409; fundGas x10 385,763) with a fifth more per item. A limit is only a cap (a
 * transaction pays for the gas it uses), so a formula does what an estimate per batch did.
 * test/agents/dso.test.ts checks these against gas used on a chain, up to the largest batch.
 */
const MINT_GAS: Record<"energy" | "financial" | "gas", { base: bigint; perItem: bigint }> = {
  energy: { base: 60_000n, perItem: 61_000n },
  financial: { base: 60_000n, perItem: 30_000n },
  gas: { base: 60_000n, perItem: 44_000n },
};

/** EIP-7825's cap on one transaction's gas (Osaka): a batch under it is valid on any chain. */
const MAX_TX_GAS = 2n ** 24n;

/** The most items one mint transaction of `kind` may hold under MAX_TX_GAS. */
function maxItemsUnderCap(kind: keyof typeof MINT_GAS): number {
  return Number((MAX_TX_GAS - MINT_GAS[kind].base) / MINT_GAS[kind].perItem);
}

/** The gas limit of a mint transaction of `kind` over `items` items. */
export function mintGasLimit(kind: SignedTx["kind"], items: number): bigint {
  const g = MINT_GAS[kind as keyof typeof MINT_GAS];
  check(g !== undefined, "kind", `no gas formula for mint transactions of kind "${kind}"`);
  check(Number.isInteger(items) && items >= 1, "items", `must be a positive integer, got ${items}`);
  return g.base + g.perItem * BigInt(items);
}
const WATCHED = ["AssetAdded", "AssetSplit", "AssetDeposited", "FinancialDeposited"] as const;
const WATCHED_TOPICS = WATCHED.map((n) => MARKET.getEvent(n).topicHash);

interface QueueItem {
  householdId: string;
  requestId: string;
}

export class Dso {
  readonly #o: Required<Omit<DsoOptions, "onError" | "sockets">> & Pick<DsoOptions, "onError" | "sockets">;
  #router: RouterSocket | undefined;
  #boundEndpoint: string | undefined;
  #running = false;
  #sendChain: Promise<void> = Promise.resolve();
  #queue: QueueItem[] = [];
  #wake: (() => void) | undefined;
  #nextNonce: number | undefined;
  readonly #waiters = new Map<string, Uint8Array[]>();
  #loops: Promise<void>[] = [];
  readonly #stats: DsoStats = { received: 0, refused: {}, accepted: 0, batches: 0, mintedRequests: 0 };

  constructor(options: DsoOptions) {
    check(
      typeof options.endpoint === "string" && options.endpoint.length > 0,
      "endpoint",
      "must be a ZeroMQ endpoint string",
    );
    check(options.maxClockSkewMs === undefined || options.maxClockSkewMs > 0, "maxClockSkewMs", "must be > 0");
    check(options.maxBatchRequests === undefined || options.maxBatchRequests >= 1, "maxBatchRequests", "must be >= 1");
    check(options.gasFundingWei === undefined || options.gasFundingWei >= 0n, "gasFundingWei", "must be >= 0");
    // A batch's largest transaction must stay under the cap on one transaction's gas (EIP-7825).
    check(
      options.maxBatchAssets === undefined ||
        (options.maxBatchAssets >= 1 && mintGasLimit("energy", options.maxBatchAssets) <= MAX_TX_GAS),
      "maxBatchAssets",
      `must be in [1, ${maxItemsUnderCap("energy")}] (a batch's mint must fit ${MAX_TX_GAS} gas), got ${options.maxBatchAssets}`,
    );
    check(
      options.maxBatchRequests === undefined || mintGasLimit("gas", options.maxBatchRequests) <= MAX_TX_GAS,
      "maxBatchRequests",
      `must be at most ${maxItemsUnderCap("gas")} (a batch's gas funding must fit ${MAX_TX_GAS} gas), got ${options.maxBatchRequests}`,
    );
    this.#o = {
      maxClockSkewMs: 30_000,
      maxBatchRequests: 64,
      maxBatchAssets: 256,
      gasFundingWei: 0n,
      maxRequestIntervals: DEFAULT_MAX_REQUEST_INTERVALS,
      maxEnvelopeBytes: DEFAULT_MAX_ENVELOPE_BYTES,
      logPollIntervalMs: 250,
      receiptPollIntervalMs: 50,
      retryDelayMs: 500,
      fromBlock: 0,
      maxLogRangeBlocks: 2000,
      // An explicit `undefined` means "the default", not "unset".
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as DsoOptions),
    };
  }

  /** The bound endpoint, with the real port when a wildcard was asked for. */
  get endpoint(): string {
    if (this.#boundEndpoint === undefined) throw new PetraError("INVALID_ARGUMENT", "endpoint: the DSO is not started");
    return this.#boundEndpoint;
  }

  get stats(): DsoStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  /** Opens accounts, queues requests a previous run reserved but never signed, binds, and starts serving. */
  async start(): Promise<string> {
    if (this.#running) return this.endpoint;
    const { book, registry } = this.#o;
    book.ensureHouseholds(registry);
    for (const r of book.unbatchedRequests()) this.#queue.push({ householdId: r.householdId, requestId: r.requestId });
    const router = await (this.#o.sockets ?? zmqSockets()).bindRouter(this.#o.endpoint);
    this.#router = router;
    this.#boundEndpoint = router.endpoint;
    this.#running = true;
    this.#loops = [this.#receiveLoop(router), this.#mintLoop(), this.#logLoop()];
    return this.#boundEndpoint;
  }

  /** Stops serving. A batch in flight stays recorded and is settled by the next start. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wake?.();
    this.#router?.close();
    await Promise.allSettled(this.#loops);
    await this.#sendChain.catch(() => undefined);
  }

  // ------------------------------------------------------------------ messages

  async #receiveLoop(router: RouterSocket): Promise<void> {
    try {
      for await (const frames of router) {
        const [identity, ...rest] = frames;
        if (identity === undefined) continue;
        this.#stats.received++;
        try {
          if (rest.length !== 1) {
            this.#refuse(
              identity,
              "MALFORMED",
              `expected one frame after the routing id, got ${rest.length}`,
              null,
              null,
            );
            continue;
          }
          this.#handle(identity, rest[0] as Uint8Array);
        } catch (e) {
          this.#o.onError?.(e);
          this.#refuse(identity, "INTERNAL_ERROR", "the DSO failed on this message; it is still serving", null, null);
        }
      }
    } catch (e) {
      if (this.#running) this.#o.onError?.(e);
    }
  }

  #handle(identity: Uint8Array, frame: Uint8Array): void {
    const nowMs = this.#o.clock.now();
    const opened = openEnvelope(frame, {
      nowMs,
      maxClockSkewMs: this.#o.maxClockSkewMs,
      maxBytes: this.#o.maxEnvelopeBytes,
      resolveKey: (from, keyHex) => this.#o.registry.keyFor(from, keyHex),
    });
    if (!opened.ok) {
      this.#refuse(
        identity,
        opened.reason,
        opened.detail,
        opened.partial.requestId ?? null,
        opened.partial.anonAddress ?? null,
      );
      return;
    }
    // The nonce is recorded in the same SQLite transaction as whatever the message changes: one
    // commit (one fsync) per message, and a crash can never keep the effect but lose the nonce.
    // Replies are sent asynchronously, so always after the commit.
    this.#o.book.transaction(() => this.#dispatch(identity, opened.envelope, nowMs));
  }

  #dispatch(identity: Uint8Array, env: Envelope, nowMs: number): void {
    const forgetBeforeMs = nowMs - 2 * this.#o.maxClockSkewMs;
    if (!this.#o.book.acceptNonce(env.keyHex, env.nonceHex, env.timestampMs, forgetBeforeMs)) {
      const m = env.message;
      const anonAddress = "anonAddress" in m ? m.anonAddress : null;
      this.#refuse(
        identity,
        "REPLAYED_NONCE",
        `nonce ${env.nonceHex} already used by "${env.from}"`,
        m.requestId,
        anonAddress,
      );
      return;
    }
    const household = this.#o.registry.household(env.from) as Household;
    const m = env.message;
    switch (m.type) {
      case "withdrawAssets":
        this.#withdraw(identity, household, m, nowMs);
        return;
      case "balanceQuery":
        this.#send(identity, {
          type: "balanceReport",
          requestId: m.requestId,
          householdId: household.id,
          balance: this.#o.book.balance(household.id) ?? 0,
          anonAddresses: this.#o.book.anonAddresses(household.id).map((a) => getAddress(a)),
        });
        return;
      case "withdrawalAccepted":
      case "failedWithdrawal":
      case "balanceReport":
        this.#refuse(identity, "INVALID_REQUEST", `the DSO does not accept "${m.type}" messages`, m.requestId, null);
        return;
      default: {
        const never: never = m;
        throw new PetraError("INVALID_MESSAGE", `unhandled message ${(never as { type: string }).type}`);
      }
    }
  }

  #withdraw(identity: Uint8Array, household: Household, m: WithdrawAssets, nowMs: number): void {
    const refuse = (reason: FailureReason, message: string) =>
      this.#refuse(identity, reason, message, m.requestId, m.anonAddress);
    let anonAddress: string;
    try {
      anonAddress = getAddress(m.anonAddress);
    } catch {
      refuse("INVALID_REQUEST", `anonAddress ${m.anonAddress} has a bad checksum`);
      return;
    }
    if (anonAddress === ZeroAddress) {
      refuse("INVALID_REQUEST", "anonAddress is the zero address");
      return;
    }
    if (m.fundGas && this.#o.gasFundingWei === 0n) {
      refuse("GAS_FUNDING_DISABLED", 'this DSO does not fund gas (gas mode is not "dso")');
      return;
    }
    // Checked before reserving: reserving enumerates the intervals, so their number must be bounded first.
    const shape = usageOf(m.assets, this.#o.maxRequestIntervals);
    if (!shape.ok) {
      refuse(shape.reason, shape.message);
      return;
    }
    const feeder = this.#o.registry.feeder(household.feederId);
    if (feeder === undefined) {
      refuse("INTERNAL_ERROR", `household "${household.id}" has no feeder in the registry`);
      return;
    }
    const bodyHash = bytesToHex(
      sha256(
        JSON.stringify({
          a: anonAddress.toLowerCase(),
          s: m.assets.map((x) => [x.powerW, x.start, x.end]),
          f: m.financial,
          g: m.fundGas,
        }),
      ),
    );
    const result = this.#o.book.reserve(
      {
        householdId: household.id,
        feederId: feeder.id,
        requestId: m.requestId,
        bodyHash,
        anonAddress,
        assets: m.assets,
        financial: m.financial,
        fundGas: m.fundGas,
      },
      nowMs,
      (snapshot) =>
        checkWithdrawal(
          {
            assets: m.assets,
            financial: m.financial,
            balance: snapshot.balance,
            limits: {
              pvCapacityW: household.pvCapacityW,
              connectionLimitW: household.connectionLimitW,
              feederRatingW: feeder.ratingW,
            },
            householdUsage: snapshot.householdUsage,
            feederUsage: snapshot.feederUsage,
          },
          this.#o.maxRequestIntervals,
        ),
    );
    switch (result.kind) {
      case "refused": {
        refuse(result.reason, result.message);
        return;
      }
      case "existing": {
        if (result.row.bodyHash !== bodyHash) {
          refuse("REQUEST_CONFLICT", `requestId "${m.requestId}" was already used for a different request`);
          return;
        }
        if (result.row.status === "pending") {
          this.#addWaiter(household.id, m.requestId, identity);
          return;
        }
        this.#answer(identity, result.row);
        return;
      }
      case "reserved":
        this.#stats.accepted++;
        this.#addWaiter(household.id, m.requestId, identity);
        this.#queue.push({ householdId: household.id, requestId: m.requestId });
        this.#wake?.();
        return;
      default: {
        const never: never = result;
        throw new PetraError("INVALID_ARGUMENT", `unhandled reserve result ${JSON.stringify(never)}`);
      }
    }
  }

  #addWaiter(householdId: string, requestId: string, identity: Uint8Array): void {
    const key = `${householdId}\u0000${requestId}`;
    const list = this.#waiters.get(key) ?? [];
    list.push(identity);
    this.#waiters.set(key, list);
  }

  #notify(householdId: string, requestId: string): void {
    const key = `${householdId}\u0000${requestId}`;
    const list = this.#waiters.get(key);
    if (!list) return;
    this.#waiters.delete(key);
    const row = this.#o.book.request(householdId, requestId);
    if (!row) return;
    for (const identity of list) this.#answer(identity, row);
  }

  /** The reply for a settled request: the same answer however often it is asked. */
  #answer(identity: Uint8Array, row: RequestRow): void {
    if (row.status === "minted") {
      this.#send(identity, {
        type: "withdrawalAccepted",
        requestId: row.requestId,
        anonAddress: getAddress(row.anonAddress),
        assetIds: row.assetIds ?? [],
        financial: row.financial,
        gasFundedWei: row.gasFundedWei,
        balance: this.#o.book.balance(row.householdId) ?? 0,
      });
    } else if (row.status === "failed") {
      this.#refuse(
        identity,
        row.failureReason ?? "MINT_FAILED",
        row.failureMessage ?? "mint failed",
        row.requestId,
        getAddress(row.anonAddress),
      );
    }
  }

  #refuse(
    identity: Uint8Array,
    reason: FailureReason,
    message: string,
    requestId: string | null,
    anonAddress: string | null,
  ): void {
    this.#stats.refused[reason] = (this.#stats.refused[reason] ?? 0) + 1;
    this.#send(identity, { type: "failedWithdrawal", requestId, anonAddress, reason, message: message.slice(0, 2000) });
  }

  #send(identity: Uint8Array, message: DsoMessage): void {
    const router = this.#router;
    if (!router || !this.#running) return;
    const bytes = sealEnvelope({ from: "dso", key: this.#o.signingKey, message, timestampMs: this.#o.clock.now() });
    // zeromq allows one send in flight per socket; chain them. A ROUTER drops messages to peers that left.
    this.#sendChain = this.#sendChain
      .then(() => (router.closed ? undefined : router.send([identity, bytes])))
      .catch((e) => this.#o.onError?.(e));
  }

  // ------------------------------------------------------------------ minting

  async #mintLoop(): Promise<void> {
    while (this.#running) {
      try {
        if (this.#nextNonce === undefined) await this.#reconcile();
        if (this.#queue.length === 0) {
          // Checked in the same turn as arming #wake: a stop() during the awaits above must not be missed.
          if (!this.#running) break;
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = undefined;
          continue;
        }
        await this.#mintNext();
      } catch (e) {
        this.#o.onError?.(e);
        // The next pass starts from what the book and the chain say.
        this.#nextNonce = undefined;
        if (this.#running) await this.#o.clock.sleep(this.#o.retryDelayMs);
      }
    }
  }

  /** Settles every batch a previous run signed, then learns the next free nonce. */
  async #reconcile(): Promise<void> {
    for (const batch of this.#o.book.openBatches()) {
      if (!this.#running) return;
      await this.#settle(batch);
    }
    const chainNonce = await this.#o.provider.getTransactionCount(this.#o.wallet.address, "pending");
    this.#nextNonce = Math.max(chainNonce, this.#o.book.maxSignedNonce() + 1);
  }

  async #mintNext(): Promise<void> {
    const { book, maxBatchRequests, maxBatchAssets } = this.#o;
    const rows: RequestRow[] = [];
    let assetCount = 0;
    while (this.#queue.length > 0 && rows.length < maxBatchRequests) {
      const item = this.#queue[0] as QueueItem;
      const row = book.request(item.householdId, item.requestId);
      if (row?.status !== "pending" || row.batchId !== null) {
        this.#queue.shift();
        continue;
      }
      if (rows.length > 0 && assetCount + row.assets.length > maxBatchAssets) break;
      this.#queue.shift();
      rows.push(row);
      assetCount += row.assets.length;
    }
    if (rows.length === 0) return;
    let txs: SignedTx[];
    try {
      txs = await this.#signBatch(rows);
    } catch (e) {
      const revert = revertOf(e);
      const refuser = gasRefuserOf(e);
      const refused = refuser === undefined ? [] : rows.filter((r) => r.anonAddress.toLowerCase() === refuser);
      if (refused.length > 0) {
        // One address would not take its gas (it has code that refuses ether): fundGas reverts for
        // all, so only the requests to that address fail and the others go into the next batch.
        const message = `the market refused the gas funding: ${revert}: ${refuser} does not accept ether (an address with code, not a fresh pseudonym)`;
        for (const r of refused) {
          book.failRequest(r.householdId, r.requestId, "MINT_FAILED", message, this.#o.clock.now());
          this.#notify(r.householdId, r.requestId);
        }
        const rest = rows.filter((r) => !refused.includes(r));
        this.#queue.unshift(...rest.map((r) => ({ householdId: r.householdId, requestId: r.requestId })));
        return;
      }
      if (revert !== undefined) {
        // The market refused the batch in simulation (e.g. this key is not the DSO): nothing will change on retry.
        const message = `the market refused the mint: ${revert}`;
        for (const r of rows) {
          book.failRequest(r.householdId, r.requestId, "MINT_FAILED", message, this.#o.clock.now());
          this.#notify(r.householdId, r.requestId);
        }
        return;
      }
      this.#queue.unshift(...rows.map((r) => ({ householdId: r.householdId, requestId: r.requestId })));
      throw e;
    }
    const members: BatchMember[] = [];
    let offset = 0;
    for (const r of rows) {
      members.push({ householdId: r.householdId, requestId: r.requestId, assetOffset: offset });
      offset += r.assets.length;
    }
    const batchId = book.recordBatch(txs, members, this.#o.clock.now());
    this.#nextNonce = (this.#nextNonce as number) + txs.length;
    this.#stats.batches++;
    await this.#settle(book.batch(batchId), true);
  }

  async #signBatch(rows: RequestRow[]): Promise<SignedTx[]> {
    const { provider, wallet, marketAddress, chainId } = this.#o;
    const key = getBytes(wallet.privateKey);
    const mints = rows.flatMap((r) =>
      r.assets.map((a) => ({ anonAddress: getAddress(r.anonAddress), powerW: a.powerW, start: a.start, end: a.end })),
    );
    const money = rows.filter((r) => r.financial > 0);
    const gas = rows.filter((r) => r.gasClaimed);
    const fee = await provider.getFeeData();
    const feeFields =
      fee.maxFeePerGas !== null
        ? { type: 2, maxFeePerGas: fee.maxFeePerGas, maxPriorityFeePerGas: fee.maxPriorityFeePerGas ?? 0n }
        : { type: 0, gasPrice: fee.gasPrice ?? 0n };
    let nonce = this.#nextNonce as number;
    const out: SignedTx[] = [];
    const checked: SignedTx["kind"] = gas.length > 0 ? "gas" : money.length > 0 ? "financial" : "energy";
    const sign = async (
      kind: SignedTx["kind"],
      items: number,
      to: string,
      data: string,
      value: bigint,
      extra: Partial<SignedTx> = {},
    ) => {
      // One transaction of the batch is executed before signing, so that a batch the market
      // would refuse fails here, naming why, and not on chain: the gas funding if there is one
      // (an address may refuse its gas, and only the DSO may fund), else a mint, the cheaper one
      // (this key may not be a minter). The DSO is always a minter and the policy checked every
      // asset's shape, so the other mints of a batch that passes do not revert (short of a
      // balance overflowing 64 bits; the batch then fails on chain and is refunded). One
      // execution where estimating each transaction ran a dozen: a simulated day spent 95 s in
      // eth_estimateGas.
      // On the latest block: a node answers "pending" (the default) by executing its whole
      // mempool first, and a mint does not depend on what is pending.
      if (kind === checked) await provider.call({ from: wallet.address, to, data, value, blockTag: "latest" });
      const gasLimit = mintGasLimit(kind, items);
      // As wallet.signTransaction signs it (the same bytes), without its slower curve code.
      const tx = signTransactionWith(key, { chainId, nonce, to, data, value, gasLimit, ...feeFields });
      out.push({ hash: tx.hash as string, kind, nonce, raw: tx.serialized, ...extra });
      nonce++;
    };
    if (mints.length > 0)
      await sign("energy", mints.length, marketAddress, MARKET.encodeFunctionData("addEnergyAssets", [mints]), 0n);
    if (money.length > 0) {
      await sign(
        "financial",
        money.length,
        marketAddress,
        MARKET.encodeFunctionData("addFinancialBalances", [
          money.map((r) => getAddress(r.anonAddress)),
          money.map((r) => r.financial),
        ]),
        0n,
      );
    }
    if (gas.length > 0) {
      // One fundGas for the batch instead of a plain transfer per address: a simulated day of
      // 1,000 households had a fifth of its transactions here. Each transfer stays on the chain
      // as a GasFunded event (attacks/heuristic-gas-funding.ts reads them as transfers).
      const targets = gas.map((r) => getAddress(r.anonAddress));
      await sign(
        "gas",
        targets.length,
        marketAddress,
        MARKET.encodeFunctionData("fundGas", [targets, this.#o.gasFundingWei]),
        this.#o.gasFundingWei * BigInt(targets.length),
        { targets: targets.map((t) => t.toLowerCase()), valueWei: this.#o.gasFundingWei.toString() },
      );
    }
    return out;
  }

  /** Broadcasts what has not reached the chain, waits for every receipt, and settles the batch in the book. */
  async #settle(batch: StoredBatch, fresh = false): Promise<void> {
    const { provider, book } = this.#o;
    const receipts = new Map<string, TransactionReceipt | "dropped">();
    // Broadcast everything first (in nonce order) so one batch costs one block, then wait.
    for (const tx of batch.txs) {
      if (fresh) {
        // Signed just now: it cannot be on chain yet.
        await sendRaw(provider, tx.raw);
        continue;
      }
      const receipt = await provider.getTransactionReceipt(tx.hash);
      if (receipt !== null) {
        receipts.set(tx.hash, receipt);
        continue;
      }
      if ((await provider.getTransaction(tx.hash)) !== null) continue;
      const chainNonce = await provider.getTransactionCount(this.#o.wallet.address, "latest");
      if (chainNonce > tx.nonce) {
        // Someone else used this nonce: our bytes can never be mined.
        receipts.set(tx.hash, "dropped");
        continue;
      }
      try {
        await sendRaw(provider, tx.raw);
      } catch (e) {
        // "already known" from a node that has it is fine; a node that refused it (e.g. the DSO
        // has no ether left) is not: fail this pass, so the loop retries and reports it.
        if ((await provider.getTransaction(tx.hash)) === null) throw e;
      }
    }
    for (const tx of batch.txs) {
      for (let polls = 1; !receipts.has(tx.hash); polls++) {
        if (!this.#running) return;
        const receipt = await provider.getTransactionReceipt(tx.hash);
        if (receipt !== null) {
          receipts.set(tx.hash, receipt);
        } else if (polls % 200 === 0 && (await provider.getTransaction(tx.hash)) === null) {
          // The node forgot it (restarted, evicted): the next pass re-broadcasts the same bytes.
          throw new PetraError("TX_FAILED", `mint transaction ${tx.hash} vanished from the node`, { hash: tx.hash });
        } else {
          await this.#o.clock.sleep(this.#o.receiptPollIntervalMs);
        }
      }
    }
    const nowMs = this.#o.clock.now();
    const values = [...receipts.values()];
    if (values.every((r) => r === "dropped")) {
      book.dropBatch(batch.id, nowMs);
      for (const m of batch.members) this.#queue.push({ householdId: m.householdId, requestId: m.requestId });
      return;
    }
    const failed = batch.txs.filter((t) => {
      const r = receipts.get(t.hash);
      return r === "dropped" || r === undefined || r.status !== 1;
    });
    if (failed.length > 0) {
      // Validation should make this unreachable; if it happens the batch is refunded and the
      // operator must look at the named transactions, since the others may have executed.
      book.failBatch(
        batch.id,
        "MINT_FAILED",
        `mint transaction(s) failed: ${failed.map((t) => t.hash).join(", ")}`,
        nowMs,
      );
      this.#o.onError?.(new PetraError("TX_FAILED", `batch ${batch.id} failed`, { hashes: failed.map((t) => t.hash) }));
    } else {
      const energy = batch.txs.find((t) => t.kind === "energy");
      const energyAssetIds: string[] = [];
      if (energy) {
        const receipt = receipts.get(energy.hash) as TransactionReceipt;
        for (const log of receipt.logs) {
          const parsed = safeParseLog(log);
          if (parsed?.name === "AssetAdded") energyAssetIds.push(String(parsed.args.assetID));
        }
      }
      const blocks = new Map<string, number>();
      for (const [hash, r] of receipts) if (r !== "dropped") blocks.set(hash, r.blockNumber);
      book.completeBatch(batch.id, { energyAssetIds, blocks }, nowMs);
      this.#stats.mintedRequests += batch.members.length;
    }
    for (const m of batch.members) this.#notify(m.householdId, m.requestId);
  }

  // ------------------------------------------------------------------ deposits

  /**
   * Reads the market's logs by block range with eth_getLogs, from a cursor kept in the book.
   * A node-side filter (eth_newFilter) would die with the node or with this process; a range
   * read from a durable cursor resumes exactly where the last committed range ended.
   */
  async #logLoop(): Promise<void> {
    const { provider, book, marketAddress } = this.#o;
    while (this.#running) {
      try {
        const cursor = book.logCursor() ?? this.#o.fromBlock;
        const latest = await provider.getBlockNumber();
        if (latest >= cursor) {
          const toBlock = Math.min(latest, cursor + this.#o.maxLogRangeBlocks - 1);
          const logs = await provider.getLogs({
            address: marketAddress,
            fromBlock: cursor,
            toBlock,
            topics: [WATCHED_TOPICS],
          });
          const events: BookEvent[] = [];
          for (const log of logs) {
            const e = toBookEvent(log);
            if (e) events.push(e);
          }
          if (!this.#running) return;
          book.applyEvents(events, toBlock);
          if (toBlock < latest) continue;
        }
      } catch (e) {
        if (this.#running) this.#o.onError?.(e);
      }
      if (this.#running) await this.#o.clock.sleep(this.#o.logPollIntervalMs);
    }
  }
}

/**
 * Broadcasts signed bytes. Straight eth_sendRawTransaction where the provider speaks JSON-RPC:
 * ethers' broadcastTransaction recovers the sender from the signature (an elliptic-curve
 * recovery) to build a response the DSO never reads, once per gas transfer and mint.
 */
async function sendRaw(provider: Provider, raw: string): Promise<void> {
  const rpc = provider as Provider & { send?: (method: string, params: unknown[]) => Promise<unknown> };
  if (typeof rpc.send === "function") await rpc.send("eth_sendRawTransaction", [raw]);
  else await provider.broadcastTransaction(raw);
}

/**
 * The market's refusal, if `e` is one: ethers over JSON-RPC reports CALL_EXCEPTION, the in-process
 * Hardhat provider a plain error carrying the revert data. Anything else (no node, a timeout) is
 * not a refusal and is retried.
 */
function revertOf(e: unknown): string | undefined {
  const decoded = marketErrorOf(e);
  if (decoded) return describeMarketError(decoded);
  const [data] = revertDataOf(e);
  if (data !== undefined) return `reverted with data ${data.slice(0, 74)}`;
  if (isEthersError(e, "CALL_EXCEPTION")) return (e as Error).message.slice(0, 300);
  return undefined;
}

/** The address a batch's check reverted on for refusing its gas (EnergyMarket__GasTransferFailed), lower case. */
function gasRefuserOf(e: unknown): string | undefined {
  const decoded = marketErrorOf(e);
  return decoded?.name === "EnergyMarket__GasTransferFailed" ? String(decoded.args[0]).toLowerCase() : undefined;
}

type LogLike = { topics: readonly string[]; data: string; blockNumber: number; index: number };

function safeParseLog(log: { topics: readonly string[]; data: string }) {
  return decodeMarketLog(log);
}

function toBookEvent(log: LogLike): BookEvent | undefined {
  const p = safeParseLog(log);
  if (!p) return undefined;
  const at = { blockNumber: log.blockNumber, logIndex: log.index };
  const a = p.args;
  switch (p.name) {
    case "AssetAdded":
      return {
        name: "AssetAdded",
        ...at,
        owner: a.anonAddress,
        assetId: String(a.assetID),
        powerW: String(a.powerW),
        start: String(a.start),
        end: String(a.end),
      };
    case "AssetSplit":
      return {
        name: "AssetSplit",
        ...at,
        parentId: String(a.parentID),
        assetId: String(a.assetID),
        owner: a.owner,
        powerW: String(a.powerW),
        start: String(a.start),
        end: String(a.end),
      };
    case "AssetDeposited":
      return { name: "AssetDeposited", ...at, owner: a.anonAddress, assetId: String(a.assetID) };
    case "FinancialDeposited":
      return { name: "FinancialDeposited", ...at, owner: a.anonAddress, amount: String(a.amount) };
    default:
      return undefined;
  }
}
