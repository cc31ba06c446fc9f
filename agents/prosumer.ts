import type { ContractTransactionResponse, Signer, TransactionReceipt } from "ethers";
import { type MarketEvent, type ReadonlyMarketState, toMarketEvent } from "../attacks/market-replay";
import { check } from "../common/errors";
import type { Rng } from "../common/rng";
import type { EnergyMarket } from "../typechain-types";
import type { Forecast } from "./forecast";
import { type GasFunder, waitForGas } from "./gas-funding";
import type { Cancel, Chain, ChainLog, Clock } from "./interfaces";
import type { SharedMarketBook } from "./market-book";
import { decodeMarketLog, describeMarketError, marketErrorOf } from "./market-log";
import { HouseholdMarketView, type MarketView } from "./market-view";
import type { PseudonymWallet } from "./pseudonym-wallet";
import type { Strategy, StrategyAction } from "./strategy";

/** One withdrawal as the prosumer asks the DSO for it (the DSO client's request, minus transport). */
export interface WithdrawRequest {
  requestId: string;
  anonAddress: string;
  assets: { powerW: number; start: number; end: number }[];
  /** Money units to mint to anonAddress with the assets. */
  financial: number;
  /** Ask the DSO to pay the address's gas ("dso" gas mode). */
  fundGas: boolean;
}

export type WithdrawOutcome =
  | {
      ok: true;
      assetIds: string[];
      /**
       * Wei the DSO sent the address for gas with this withdrawal, in a transaction already mined
       * when it answers (absent or 0n: none, e.g. an address it funded before).
       */
      gasFundedWei?: bigint;
    }
  | { ok: false; reason: string; message: string };

/** The DSO as the prosumer needs it; agents/prosumer-process.ts adapts the DSO client to this. */
export interface AssetWithdrawer {
  withdraw(request: WithdrawRequest): Promise<WithdrawOutcome>;
}

/** The market transactions a prosumer sends, as its records name them. */
export type TxAction = "post" | "accept" | "rescind" | "deposit-asset" | "deposit-money" | "deposit-batch";

/** What a prosumer reports about itself: the runner's raw material for clearing times and ground truth. */
export type ProsumerRecord =
  | { kind: "pseudonym"; atMs: number; interval: number; index: number; address: string }
  | {
      kind: "withdraw";
      atMs: number;
      doneAtMs: number;
      interval: number;
      address: string;
      powerW: number;
      financial: number;
      ok: boolean;
      reason?: string;
      assetIds?: string[];
    }
  | {
      kind: "tx";
      action: TxAction;
      from: string;
      sentAtMs: number;
      doneAtMs: number;
      ok: boolean;
      txHash?: string;
      block?: number;
      assetID?: string;
      /** A deposit-batch's assets (depositBatch, with its money in amount); a single asset is in assetID. */
      assetIDs?: string[];
      offerID?: string;
      amount?: string;
      reason?: string;
    }
  | { kind: "closed"; atMs: number; interval: number }
  | { kind: "done"; atMs: number; drained: boolean };

export type GasSetup = { mode: "dso" } | { mode: "household-main"; funder: GasFunder };

export interface ProsumerSchedule {
  /** Clock time at which trading for `firstInterval` opens (its assets are withdrawn then). */
  startAtMs: number;
  /** Market interval index of the first traded interval (counted from midnight). */
  firstInterval: number;
  intervalCount: number;
  /** Wall length of one interval. */
  intervalMs: number;
  /** Assets for interval k are withdrawn leadIntervals before k's delivery starts; trading for k ends when it starts. */
  leadIntervals: number;
}

export interface ProsumerOptions {
  householdId: string;
  clock: Clock;
  chain: Chain;
  dso: AssetWithdrawer;
  wallet: PseudonymWallet;
  forecast: Forecast;
  strategy: Strategy;
  gas: GasSetup;
  schedule: ProsumerSchedule;
  /** Price consumers budget for when they withdraw money, per W per interval. */
  basePriceMicroPerWInterval: bigint;
  /** First block of the market (its deployment): the prosumer rebuilds the market from there. */
  fromBlock: number;
  /** A pseudonym sends nothing before it holds this much ether, in wei. Default 10^15 (0.001 ETH). */
  minGasWei?: bigint;
  /** How long to wait for gas to arrive, ms. Default 30 000. */
  gasTimeoutMs?: number;
  /** After the last interval closes, how long to wait for deposits to land, ms. Default 4 intervals. */
  drainTimeoutMs?: number;
  record: (r: ProsumerRecord) => void;
  /** Log lines for humans. */
  log?: (line: string) => void;
  /**
   * The market as every household of the process sees it (simulated mode): the household keeps a
   * view on it instead of replaying every log itself. By default it has a market view of its own.
   */
  marketBook?: SharedMarketBook;
  /**
   * zk withdrawals only: a retired pseudonym's money goes back as mixer notes the household holds
   * (PrivateWithdrawer.depositBack), since a plain depositFinancial credits the household only when
   * the DSO knows the pseudonym. Called once per pseudonym; the change below the smallest
   * denomination stays on it.
   */
  moneyBack?: (
    pseudonym: Signer,
  ) => Promise<{ amount: bigint; change: bigint; refused: readonly string[]; lastDepositBlock?: number }>;
  /**
   * Binary exponential backoff after a failed accept (a lost race, almost always): the asset sits
   * out a uniform 0 to 2^min(losses, maxExponent) - 1 blocks, losses counting its failed accepts
   * in a row. Absent or maxExponent 0: the paper's agent, which tries again at the next block.
   */
  raceBackoff?: { maxExponent: number; rng: Rng };
}

/** The largest raceBackoff exponent: 2^10 blocks is hours at any block time a market would use. */
export const MAX_RACE_BACKOFF = 10;
/** Assets per depositBatch: bounds a transaction's gas far below a block's. */
const MAX_DEPOSIT_BATCH = 32;
/** depositEnergyAsset costs 33k (gas-snapshot.json); each further asset of a batch under 10k, money 6k. */
function depositGasLimit(assets: number): bigint {
  return 60_000n + 20_000n * BigInt(assets);
}
const NOT_YET = Number.POSITIVE_INFINITY;
/** ProsumerOptions.minGasWei's default: 0.001 ETH. */
const DEFAULT_MIN_GAS_WEI = 10n ** 15n;
/** The market event a log carries, if it is one. */
function parseMarketLog(log: ChainLog): MarketEvent | undefined {
  return toMarketEvent(decodeMarketLog(log));
}

/**
 * A household on the market: withdraws its forecast surplus or need from the DSO ahead of each
 * interval, lets its strategy trade on a market view rebuilt from the chain's logs, and hands
 * everything back to the DSO when an interval closes. Time, chain and randomness all come
 * through its options, so the same agent runs on a simulated clock.
 */
export class Prosumer {
  readonly #o: ProsumerOptions;
  readonly #mine = new Set<string>();
  /** Each pseudonym's place in #mine (the order it was first used in). */
  readonly #mineOrder = new Map<string, number>();
  /**
   * The market from the logs, as this household needs it: a view of its own (agents/market-view.ts)
   * or on the book the process's households share (agents/market-book.ts).
   */
  readonly #replay: MarketView;
  readonly #state: ReadonlyMarketState;
  /**
   * Ids of this household's assets and offers, kept as the logs arrive; entries the market no
   * longer holds are dropped when met. On a market of thousands of households, scanning these
   * instead of the whole market is what keeps each block's work per household small.
   */
  readonly #ownAssets = new Set<bigint>();
  readonly #ownOffers = new Set<bigint>();
  /** Last interval each address was withdrawn for: a fresh-per-X address retires after it. */
  readonly #lastIntervalOf = new Map<string, number>();
  readonly #signers = new Map<string, Signer>();
  readonly #markets = new Map<string, EnergyMarket>();
  readonly #gasReady = new Map<string, Promise<void>>();
  /** "dso" gas mode: addresses whose withdrawal answer is awaited; true if it brought their gas. */
  readonly #gasAnswers = new Map<string, Promise<boolean>>();
  /** Asset/offer -> block that must be replayed before it may be used again (NOT_YET while in flight). */
  readonly #busyAssets = new Map<bigint, number>();
  readonly #busyOffers = new Map<bigint, number>();
  /** Addresses with a money deposit in flight. */
  readonly #busyMoney = new Map<string, number>();
  /** zk mode: pseudonyms whose money went back as notes (what is left on them is change). */
  readonly #movedBack = new Set<string>();
  /** Money promised by accepts in flight, per address; an address with none has no entry. */
  readonly #committed = new Map<string, bigint>();
  /** Failed accepts in a row, per buying asset (only with raceBackoff). */
  readonly #losses = new Map<bigint, number>();
  readonly #timers: Cancel[] = [];
  #watch?: Cancel;
  #replayedBlock = -1;
  #tradableFrom: number;
  #allClosed = false;
  #inFlight = 0;
  #finish?: (drained: boolean) => void;

  constructor(opts: ProsumerOptions) {
    const s = opts.schedule;
    check(Number.isFinite(s.startAtMs), "schedule.startAtMs", `must be a clock time in ms, got ${s.startAtMs}`);
    check(
      Number.isInteger(s.firstInterval) && s.firstInterval >= 0,
      "schedule.firstInterval",
      `must be a non-negative integer, got ${s.firstInterval}`,
    );
    check(
      Number.isInteger(s.intervalCount) && s.intervalCount > 0,
      "schedule.intervalCount",
      `must be a positive integer, got ${s.intervalCount}`,
    );
    check(
      Number.isFinite(s.intervalMs) && s.intervalMs > 0,
      "schedule.intervalMs",
      `must be positive, got ${s.intervalMs}`,
    );
    check(
      Number.isInteger(s.leadIntervals) && s.leadIntervals >= 1,
      "schedule.leadIntervals",
      `must be an integer >= 1, got ${s.leadIntervals}`,
    );
    check(opts.basePriceMicroPerWInterval > 0n, "basePriceMicroPerWInterval", "must be positive");
    check(
      opts.raceBackoff === undefined ||
        (Number.isInteger(opts.raceBackoff.maxExponent) &&
          opts.raceBackoff.maxExponent >= 0 &&
          opts.raceBackoff.maxExponent <= MAX_RACE_BACKOFF),
      "raceBackoff.maxExponent",
      `must be an integer in [0, ${MAX_RACE_BACKOFF}], got ${opts.raceBackoff?.maxExponent}`,
    );
    this.#o = opts;
    this.#tradableFrom = s.firstInterval;
    this.#replay = opts.marketBook?.view(this.#mine) ?? new HouseholdMarketView({ isMine: (a) => this.#mine.has(a) });
    this.#state = this.#replay.state;
  }

  /** Clock time at which trading for market interval k opens (its withdrawal). */
  opensAtMs(k: number): number {
    const s = this.#o.schedule;
    return s.startAtMs + (k - s.firstInterval) * s.intervalMs;
  }

  /** Clock time at which trading for k closes: the start of its delivery. */
  closesAtMs(k: number): number {
    return this.opensAtMs(k) + this.#o.schedule.leadIntervals * this.#o.schedule.intervalMs;
  }

  /** Runs the household until its last interval closed and everything it held is deposited (or the drain timed out). */
  run(): Promise<{ drained: boolean }> {
    const o = this.#o;
    const s = o.schedule;
    const done = new Promise<{ drained: boolean }>((resolve) => {
      this.#finish = (drained) => {
        this.#finish = undefined;
        this.stop();
        o.record({ kind: "done", atMs: o.clock.now(), drained });
        resolve({ drained });
      };
    });
    this.#watch = o.chain.watchMarketLogs(
      { fromBlock: o.fromBlock, onError: (e) => o.log?.(`log filter poll failed: ${short(e)}`) },
      (logs) => this.#onLogs(logs),
    );
    const last = s.firstInterval + s.intervalCount - 1;
    for (let k = s.firstInterval; k <= last; k++) {
      this.#timers.push(o.clock.schedule(this.opensAtMs(k), () => void this.#withdraw(k)));
      this.#timers.push(o.clock.schedule(this.closesAtMs(k), () => this.#close(k, k === last)));
    }
    const drainMs = o.drainTimeoutMs ?? 4 * s.intervalMs;
    this.#timers.push(o.clock.schedule(this.closesAtMs(last) + drainMs, () => this.#finish?.(false)));
    return done;
  }

  stop(): void {
    this.#watch?.cancel();
    for (const t of this.#timers) t.cancel();
  }

  #onLogs(logs: ChainLog[]): void {
    const events = this.#replay.apply(logs, parseMarketLog);
    this.#replayedBlock = Math.max(this.#replayedBlock, this.#replay.position?.blockNumber ?? -1);
    for (const ev of events) {
      if (ev.name === "AssetAdded" && this.#mine.has(ev.anonAddress)) this.#ownAssets.add(ev.assetID);
      else if (ev.name === "AssetSplit" && this.#mine.has(ev.owner)) this.#ownAssets.add(ev.assetID);
      else if (ev.name === "OfferPosted" && this.#ownAssets.has(ev.assetID)) this.#ownOffers.add(ev.offerID);
    }
    this.#act();
  }

  #release(): void {
    for (const m of [this.#busyAssets, this.#busyOffers, this.#busyMoney] as Map<unknown, number>[]) {
      for (const [key, block] of m) if (block <= this.#replayedBlock) m.delete(key);
    }
  }

  async #withdraw(k: number): Promise<void> {
    const o = this.#o;
    const netW = o.forecast.netW(k);
    if (netW === 0) return;
    const p = o.wallet.next(k);
    if (!this.#mine.has(p.address)) {
      this.#mineOrder.set(p.address, this.#mine.size);
      this.#mine.add(p.address);
      o.record({ kind: "pseudonym", atMs: o.clock.now(), interval: k, index: p.index, address: p.address });
    }
    this.#lastIntervalOf.set(p.address, Math.max(k, this.#lastIntervalOf.get(p.address) ?? k));
    const financial = netW < 0 ? Number(BigInt(-netW) * o.basePriceMicroPerWInterval) : 0;
    const atMs = o.clock.now();
    this.#inFlight++;
    // "dso" gas mode: the DSO answers once its gas transfer to the address is mined, so until the
    // answer the address's gas is waited for, not polled: the assets' logs usually arrive first,
    // and a balance query per pseudonym (a round trip through Tor in live mode) is saved.
    let answered: ((outcome: WithdrawOutcome | undefined) => void) | undefined;
    if (o.gas.mode === "dso" && !this.#gasReady.has(p.address) && !this.#gasAnswers.has(p.address)) {
      const address = p.address;
      const minWei = o.minGasWei ?? DEFAULT_MIN_GAS_WEI;
      this.#gasAnswers.set(
        address,
        new Promise<boolean>((resolve) => {
          answered = (out) => {
            this.#gasAnswers.delete(address);
            const funded = out?.ok === true && (out.gasFundedWei ?? 0n) >= minWei;
            if (funded) this.#gasReady.set(address, Promise.resolve());
            resolve(funded);
          };
        }),
      );
    }
    try {
      if (o.gas.mode === "household-main") await o.gas.funder.fund(p.address);
      const outcome = await o.dso.withdraw({
        requestId: `${o.householdId}:${k}`,
        anonAddress: p.address,
        assets: [{ powerW: netW, start: k, end: k }],
        financial,
        fundGas: o.gas.mode === "dso",
      });
      o.record({
        kind: "withdraw",
        atMs,
        doneAtMs: o.clock.now(),
        interval: k,
        address: p.address,
        powerW: netW,
        financial,
        ok: outcome.ok,
        ...(outcome.ok ? { assetIds: outcome.assetIds } : { reason: `${outcome.reason}: ${outcome.message}` }),
      });
      answered?.(outcome);
      if (!outcome.ok) o.log?.(`interval ${k}: DSO refused withdrawal: ${outcome.reason} ${outcome.message}`);
    } catch (e) {
      answered?.(undefined);
      o.record({
        kind: "withdraw",
        atMs,
        doneAtMs: o.clock.now(),
        interval: k,
        address: p.address,
        powerW: netW,
        financial,
        ok: false,
        reason: short(e),
      });
      o.log?.(`interval ${k}: withdrawal failed: ${short(e)}`);
    } finally {
      this.#inFlight--;
    }
    this.#act();
  }

  #close(k: number, last: boolean): void {
    this.#tradableFrom = k + 1;
    this.#o.record({ kind: "closed", atMs: this.#o.clock.now(), interval: k });
    if (last) this.#allClosed = true;
    this.#act();
  }

  #act(): void {
    this.#release();
    const o = this.#o;
    const tradableFrom = this.#tradableFrom;
    const actions = o.strategy.decide({
      market: this.#state,
      mine: this.#mine,
      tradableFrom,
      forecastNetW: (k) => o.forecast.netW(k),
      busyAssets: new Set(this.#busyAssets.keys()),
      busyOffers: new Set(this.#busyOffers.keys()),
      committedMicro: this.#committed,
      ownAssetIds: this.#ownAssets,
    });
    for (const a of actions) this.#execute(a);

    // Housekeeping: whatever belongs to closed intervals goes back to the DSO.
    for (const offerID of this.#ownOffers) {
      const offer = this.#state.offers.get(offerID);
      if (offer?.state !== "Open") {
        if (!this.#busyOffers.has(offerID)) this.#ownOffers.delete(offerID);
        continue;
      }
      if (!this.#mine.has(offer.poster) || this.#busyOffers.has(offerID)) continue;
      const asset = this.#state.assets.get(offer.assetID);
      if (!asset || asset.end >= BigInt(tradableFrom)) continue;
      this.#send("rescind", offer.poster, { offerID }, (m) => m.rescindOffer(offerID), this.#busyOffers, offerID);
    }
    const depositable = new Map<string, bigint[]>();
    for (const assetID of this.#ownAssets) {
      const asset = this.#state.assets.get(assetID);
      if (!asset) {
        if (!this.#busyAssets.has(assetID)) this.#ownAssets.delete(assetID);
        continue;
      }
      if (
        !this.#mine.has(asset.owner) ||
        asset.locked ||
        this.#busyAssets.has(assetID) ||
        asset.end >= BigInt(tradableFrom)
      )
        continue;
      this.#losses.delete(assetID);
      const ids = depositable.get(asset.owner);
      if (ids) ids.push(assetID);
      else depositable.set(asset.owner, [assetID]);
    }
    // What an address holds goes back in one transaction: its closed assets (a trade leaves a
    // pseudonym two or three parts) and, if that retires it, its money. In a simulated day of
    // 1,000 households that is a third fewer transactions. A lone asset keeps the paper's call.
    for (const [owner, ids] of depositable) {
      for (let i = 0; i < ids.length; i += MAX_DEPOSIT_BATCH) {
        const batch = ids.slice(i, i + MAX_DEPOSIT_BATCH);
        const last = i + MAX_DEPOSIT_BATCH >= ids.length;
        const balance = this.#state.balances.get(owner) ?? 0n;
        const withMoney =
          last &&
          balance > 0n &&
          !this.#o.moneyBack &&
          !this.#busyMoney.has(owner) &&
          this.#retired(owner, new Set(ids));
        const [first] = batch as [bigint];
        if (batch.length === 1 && !withMoney) {
          this.#send(
            "deposit-asset",
            owner,
            { assetID: first },
            (m) => m.depositEnergyAsset(first),
            this.#busyAssets,
            first,
          );
          continue;
        }
        const amount = withMoney ? balance : 0n;
        if (withMoney) this.#busyMoney.set(owner, NOT_YET);
        this.#send(
          "deposit-batch",
          owner,
          { assetIDs: batch, ...(withMoney ? { amount } : {}) },
          (m) => m.depositBatch(batch, amount, { gasLimit: depositGasLimit(batch.length) }),
          this.#busyAssets,
          batch,
          (ok, block) => {
            if (withMoney) this.#busyMoney.set(owner, ok ? block : block + 1);
          },
        );
      }
    }
    for (const address of this.#moneyHolders()) {
      const balance = this.#state.balances.get(address) ?? 0n;
      if (this.#busyMoney.has(address) || !this.#retired(address)) continue;
      if (this.#o.moneyBack) {
        if (!this.#movedBack.has(address)) this.#moneyBack(address);
        continue;
      }
      this.#send(
        "deposit-money",
        address,
        { amount: balance },
        (m) => m.depositFinancial(balance),
        this.#busyMoney,
        address,
      );
    }
    if (this.#allClosed && this.#drained()) this.#finish?.(true);
  }

  /** An address holds nothing more it needs (once the assets in `leaving` are gone): its money may go back. */
  #retired(address: string, leaving?: ReadonlySet<bigint>): boolean {
    if (this.#allClosed) return this.#holdsNoAssets(address, leaving);
    const fresh = this.#o.wallet.policy.kind === "per-interval" || this.#o.wallet.policy.kind === "per-offer";
    const lastK = this.#lastIntervalOf.get(address);
    return fresh && lastK !== undefined && lastK < this.#tradableFrom && this.#holdsNoAssets(address, leaving);
  }

  #holdsNoAssets(address: string, leaving?: ReadonlySet<bigint>): boolean {
    for (const id of this.#ownAssets)
      if (this.#state.assets.get(id)?.owner === address && !leaving?.has(id)) return false;
    return true;
  }

  #drained(): boolean {
    if (this.#inFlight > 0 || this.#busyAssets.size > 0 || this.#busyOffers.size > 0 || this.#busyMoney.size > 0)
      return false;
    for (const id of this.#ownAssets) {
      const a = this.#state.assets.get(id);
      if (a && this.#mine.has(a.owner)) return false;
    }
    for (const address of this.#moneyHolders()) if (!this.#movedBack.has(address)) return false;
    return true;
  }

  /**
   * The household's addresses that hold money, in the order they were first used. Read off the
   * view's balances (views keep non-zero ones only), not the pseudonyms: a day's household has
   * used ~100 pseudonyms, nearly all emptied, and this runs on every block it sees.
   */
  #moneyHolders(): string[] {
    const holders: string[] = [];
    for (const [address, balance] of this.#state.balances)
      if (balance > 0n && this.#mine.has(address)) holders.push(address);
    const order = this.#mineOrder;
    return holders.sort((x, y) => (order.get(x) as number) - (order.get(y) as number));
  }

  #commit(address: string, micro: bigint): void {
    const total = (this.#committed.get(address) ?? 0n) + micro;
    if (total === 0n) this.#committed.delete(address);
    else this.#committed.set(address, total);
  }

  #execute(a: StrategyAction): void {
    switch (a.kind) {
      case "post":
        this.#send(
          "post",
          a.from,
          { assetID: a.assetID },
          (m) => m.postOffer(a.assetID, a.priceMicroPerWInterval),
          this.#busyAssets,
          a.assetID,
        );
        return;
      case "accept": {
        // #send marks the asset; the offer is held too, so no other asset tries it meanwhile.
        this.#busyOffers.set(a.offerID, NOT_YET);
        this.#commit(a.from, a.paymentMicro);
        const uncommit = () => this.#commit(a.from, -a.paymentMicro);
        this.#send(
          "accept",
          a.from,
          { assetID: a.assetID, offerID: a.offerID },
          (m) => m.acceptOffer(a.offerID, a.assetID),
          this.#busyAssets,
          a.assetID,
          (ok, block) => {
            uncommit();
            // After a lost race the asset may try other offers at once (or after its backoff); the
            // lost offer waits a block.
            this.#busyAssets.set(a.assetID, ok ? block : block + this.#backoffBlocks(a.assetID));
            this.#busyOffers.set(a.offerID, ok ? block : block + 1);
            if (ok) this.#losses.delete(a.assetID);
          },
        );
        return;
      }
      default: {
        const unreachable: never = a;
        throw new Error(`unhandled strategy action ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * Blocks a buying asset sits out after a failed accept. Without it, hundreds of consumers chasing
   * a few asks each send an accept every block and all but one per ask revert; doubling the window
   * per loss spreads them the way Ethernet spreads colliding senders.
   */
  #backoffBlocks(assetID: bigint): number {
    const b = this.#o.raceBackoff;
    if (!b || b.maxExponent === 0) return 0;
    const losses = (this.#losses.get(assetID) ?? 0) + 1;
    this.#losses.set(assetID, losses);
    return b.rng.int(0, 2 ** Math.min(losses, b.maxExponent) - 1);
  }

  #signerFor(address: string): Signer {
    let s = this.#signers.get(address);
    if (!s) {
      const p = this.#o.wallet.find(address);
      if (!p) throw new Error(`no key for ${address}: not a pseudonym of ${this.#o.householdId}`);
      s = this.#o.chain.signer(p.privateKey);
      this.#signers.set(address, s);
    }
    return s;
  }

  /** The market bound to `address`'s signer: built once, since building a contract object is not cheap. */
  #marketFor(address: string): EnergyMarket {
    let m = this.#markets.get(address);
    if (!m) {
      m = this.#o.chain.market(this.#signerFor(address));
      this.#markets.set(address, m);
    }
    return m;
  }

  /** Resolves once `address` holds its gas: at once if known, after the DSO's answer if one is awaited, else by polling. */
  #ensureGas(address: string): Promise<void> {
    const ready = this.#gasReady.get(address);
    if (ready) return ready;
    // No gas in the answer (a refusal, an address funded before): the balance decides after all.
    const answer = this.#gasAnswers.get(address);
    if (answer) return answer.then((funded) => (funded ? undefined : this.#ensureGas(address)));
    const o = this.#o;
    const polled = waitForGas({
      chain: o.chain,
      clock: o.clock,
      address,
      minWei: o.minGasWei ?? DEFAULT_MIN_GAS_WEI,
      pollMs: 100,
      timeoutMs: o.gasTimeoutMs ?? 30_000,
    });
    polled.catch(() => this.#gasReady.delete(address));
    this.#gasReady.set(address, polled);
    return polled;
  }

  /** zk mode's deposit-money: once per pseudonym, recorded like a transaction. */
  #moneyBack(address: string): void {
    const o = this.#o;
    const moneyBack = o.moneyBack as NonNullable<ProsumerOptions["moneyBack"]>;
    this.#busyMoney.set(address, NOT_YET);
    this.#inFlight++;
    void (async () => {
      const sentAtMs = o.clock.now();
      let reason: string | undefined;
      let amount = 0n;
      let depositBlock: number | undefined;
      try {
        await this.#ensureGas(address);
        const r = await moneyBack(this.#signerFor(address));
        amount = r.amount;
        depositBlock = r.lastDepositBlock;
        if (r.refused.length > 0) reason = r.refused.join("; ");
      } catch (e) {
        reason = short(e);
      }
      // Once, whatever happened: a failure is recorded and what it left stays on the pseudonym.
      this.#movedBack.add(address);
      // The balance is settled once the block of its last market deposit is replayed. Not the
      // latest block: the desk's note deposits after it are Mixer transactions, which no market
      // log may follow when the market goes quiet, so waiting for them could never end. Without a
      // mined deposit nothing of ours is pending, and movedBack keeps it from being tried again.
      const block = depositBlock ?? this.#replayedBlock;
      this.#busyMoney.set(address, block);
      o.record({
        kind: "tx",
        action: "deposit-money",
        from: address,
        sentAtMs,
        doneAtMs: o.clock.now(),
        ok: reason === undefined,
        block,
        amount: String(amount),
        ...(reason ? { reason } : {}),
      });
      this.#inFlight--;
      this.#act();
    })();
  }

  /**
   * Sends one transaction for `from` and records it. `key` is marked in flight in `busy` at once;
   * once the transaction is decided, it stays there until that block is replayed.
   */
  #send<K>(
    action: TxAction,
    from: string,
    ids: { assetID?: bigint; assetIDs?: readonly bigint[]; offerID?: bigint; amount?: bigint },
    call: (m: EnergyMarket) => Promise<ContractTransactionResponse>,
    busy: Map<K, number>,
    keys: K | readonly K[],
    after?: (ok: boolean, block: number) => void,
  ): void {
    const o = this.#o;
    const all: readonly K[] = Array.isArray(keys) ? keys : [keys as K];
    for (const key of all) busy.set(key, NOT_YET);
    this.#inFlight++;
    void (async () => {
      let sentAtMs = o.clock.now();
      let receipt: TransactionReceipt | null = null;
      let txHash: string | undefined;
      let reason: string | undefined;
      try {
        await this.#ensureGas(from);
        // "Sent" as the paper timed it: when the transaction leaves, not when the agent decided.
        sentAtMs = o.clock.now();
        const tx = await call(this.#marketFor(from));
        txHash = tx.hash;
        receipt = await o.chain.waitForReceipt(tx.hash);
        if (receipt.status !== 1) reason = `reverted in block ${receipt.blockNumber}`;
      } catch (e) {
        reason = short(e);
      }
      const doneAtMs = o.clock.now();
      let block = receipt?.blockNumber;
      if (block === undefined) block = await o.chain.provider.getBlockNumber().catch(() => this.#replayedBlock);
      const ok = receipt?.status === 1;
      // A failure is usually explained by someone else's transaction that is not yet in a block
      // (an offer accepted in the pending state): retrying before the next block would only fail
      // again, in a loop as fast as the node answers. So a failed key waits for one more block.
      for (const key of all) busy.set(key, ok ? block : block + 1);
      let offerID = ids.offerID;
      if (action === "post" && receipt) {
        for (const log of receipt.logs) {
          const parsed = decodeMarketLog(log);
          if (parsed?.name === "OfferPosted") offerID = parsed.args[0] as bigint;
        }
      }
      o.record({
        kind: "tx",
        action,
        from,
        sentAtMs,
        doneAtMs,
        ok,
        ...(txHash ? { txHash } : {}),
        block,
        ...(ids.assetID !== undefined ? { assetID: String(ids.assetID) } : {}),
        ...(ids.assetIDs !== undefined ? { assetIDs: ids.assetIDs.map(String) } : {}),
        ...(offerID !== undefined ? { offerID: String(offerID) } : {}),
        ...(ids.amount !== undefined ? { amount: String(ids.amount) } : {}),
        ...(reason ? { reason } : {}),
      });
      after?.(ok, block);
      this.#inFlight--;
      this.#act();
    })();
  }
}

/** A one-line reason: the market's custom error with its arguments when the revert data holds one. */
export function short(e: unknown): string {
  const err = e as {
    revert?: { name?: string; args?: unknown[] };
    info?: { error?: { message?: string }; payload?: { method?: string } };
    shortMessage?: string;
    message?: string;
  };
  if (err?.revert?.name) return `${err.revert.name}(${(err.revert.args ?? []).map(String).join(", ")})`;
  const decoded = marketErrorOf(e);
  if (decoded) return describeMarketError(decoded);
  const inner = err?.info?.error?.message;
  const method = err?.info?.payload?.method;
  if (inner) return `${method ?? "rpc"}: ${inner}`.split("\n")[0] as string;
  return String(err?.shortMessage ?? err?.message ?? e).split("\n")[0] as string;
}
