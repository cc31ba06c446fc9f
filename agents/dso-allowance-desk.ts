import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils";
import Database from "better-sqlite3";
import { getAddress, isError as isEthersError, type Signer, verifyMessage } from "ethers";
import { Router } from "zeromq";
import type { DeskView } from "../attacks/heuristic-desk-view";
import { check, PetraError } from "../common/errors";
import { allowanceLeaf } from "../mixer/allowance";
import { buildPoseidon, type Poseidon } from "../mixer/poseidon";
import { AllowanceVault__factory, EnergyMarket__factory, Mixer__factory } from "../typechain-types";
import type { AccountBook } from "./account-book";
import {
  type AllowanceRequest,
  commitmentFormError,
  type DepositBackRequest,
  type DeskAnswer,
  type DeskEnvelope,
  type DeskRefusalReason,
  type Direction,
  depositBackKeyText,
  isPseudonymSender,
  type NoteDepositRequest,
  type NoteRedemptionRequest,
  openDeskEnvelope,
  sealDeskEnvelope,
} from "./allowance-messages";
import { checkWithdrawal, DEFAULT_MAX_REQUEST_INTERVALS, type IntervalUsage } from "./dso-policy";
import { DEFAULT_MAX_ENVELOPE_BYTES, type SigningKey } from "./envelope";
import type { Household, HouseholdRegistry } from "./household-registry";
import type { Clock } from "./interfaces";

/**
 * The DSO's allowance desk: instead of minting assets to a household's anonymous addresses (which
 * tells the DSO every pseudonym of every household), the DSO
 * - issues allowances into the AllowanceVault of the requested direction: it checks the cap and
 *   window the household asks for against the household's limit (PV capacity for production,
 *   connection limit for consumption) and the feeder's rating, per interval of the window, exactly
 *   as it checks a direct mint (agents/dso-policy.ts), then computes the leaf
 *   Poseidon(4)(capW, windowStart, windowEnd, inner) itself from the household's `inner`
 *   (Poseidon(2)(secret, nullifier), mixer/allowance.ts). Every leaf it inserts therefore carries
 *   exactly the cap and window it approved, while secret and nullifier stay with the household
 *   (the nullifier hash a spend reveals cannot be joined with `inner`); and
 * - pays money from the household's account into the Mixer as fixed-denomination notes whose
 *   commitments the household supplies (one depositMany per request; queued requests for the same
 *   pool share one);
 * - takes money back without learning whose it is: a pseudonym that deposited money back
 *   (FinancialDeposited) claims it as notes of one denomination, under a one-off key it certifies
 *   with its Ethereum key (depositBackRequest; the desk checks the deposit on chain and that no one
 *   claimed it before); later the household, under its own name, redeems notes with mixer
 *   withdrawal proofs whose recipient and relayer are the DSO (fee 0). The desk checks each proof
 *   against the pool (eth_call), submits it, and credits the denomination to the household once it
 *   is mined, exactly once per nullifier. It learns "household H redeemed a note of denomination d",
 *   never which pseudonym's deposit made it.
 * The household later withdraws energy and money to fresh pseudonyms with proofs, through a
 * relayer (mixer/relayer.ts). The desk's records hold households and commitments, never an address
 * of a pseudonym; spends reveal only nullifier hashes, which no record here can be joined with.
 *
 * It shares the DSO's account book (one SQLite file): the household balances it debits, the
 * per-interval usage the DSO's own mints count (an issued allowance counts its full cap over its
 * whole window, for good, as a mint does), and the envelope nonces. Its own rows live in tables
 * prefixed desk_. Every request is reserved (row, debit, usage, nonce) in one transaction before
 * anything goes on chain; a re-sent request gets the same answer; after a restart the desk looks
 * each pending commitment up on chain (the trees refuse a duplicate leaf, so nothing is inserted
 * twice) and finishes the rest.
 *
 * Its transactions come from the DSO's account, which the DSO's minter (agents/dso.ts) also signs
 * with. In zk runs the minter is idle (households withdraw through the desk); should both send,
 * the minter recovers from a nonce the desk took (its batch is "dropped" and re-signed) and the
 * desk reads the pending nonce before each send.
 */
export interface AllowanceDeskOptions {
  /** ZeroMQ endpoint to bind; "tcp://127.0.0.1:*" picks a free port. */
  endpoint: string;
  registry: HouseholdRegistry;
  /** The DSO's account book: balances, usage and nonces are shared with the DSO's minter. */
  book: AccountBook;
  /** The market's DSO account, connected to a provider: only it may issue and deposit. */
  signer: Signer;
  /** The vault per direction; a direction without one is refused. */
  vaults: Partial<Record<Direction, string>>;
  /** Mixer pools, one per denomination. */
  pools: readonly string[];
  /** The DSO's long-term Ed25519 key (answers are signed with it). */
  signingKey: SigningKey;
  clock: Clock;
  /** Default 30 000. */
  maxClockSkewMs?: number;
  /** Longest allowance window, intervals. Default DEFAULT_MAX_REQUEST_INTERVALS (a week of quarter hours). */
  maxWindowIntervals?: number;
  maxEnvelopeBytes?: number;
  /** Most notes one depositMany carries (queued note requests of a pool are batched). Default 100. */
  maxBatchNotes?: number;
  /** Receipt polling period. Default 50. */
  receiptPollMs?: number;
  /** Wait after a failed RPC call before retrying. Default 500. */
  retryDelayMs?: number;
  /** Diagnostics. Default: ignore. */
  onError?: (error: unknown) => void;
}

export interface DeskStats {
  received: number;
  refused: Partial<Record<DeskRefusalReason, number>>;
  allowancesIssued: number;
  notesDeposited: number;
  /** Notes redeemed into a household's account, and the money credited for them. */
  notesRedeemed: number;
  moneyRedeemed: number;
  /** The depositMany transactions the desk sent and saw mined: gasUsed / notes is its gas per note. */
  noteDeposits: { transactions: number; notes: number; gasUsed: number };
}

/** One row of the desk's records, as the DSO keeps them. */
export interface DeskRecord {
  /** The household; for a deposit-back, the pseudonym that claimed it (the desk never learns whose it is). */
  householdId: string;
  requestId: string;
  kind: RequestKind;
  status: "pending" | "done" | "failed";
  contract: string;
  direction: Direction | null;
  capW: number | null;
  windowStart: number | null;
  windowEnd: number | null;
  denomination: string | null;
  amount: number;
  commitments: string[];
  txHashes: string[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS desk_requests (
  household_id TEXT NOT NULL, request_id TEXT NOT NULL, body_hash TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('allowance', 'notes', 'deposit-back', 'redemption')),
  status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
  contract TEXT NOT NULL, direction TEXT, cap_w INTEGER, window_start INTEGER, window_end INTEGER,
  denomination TEXT, amount INTEGER NOT NULL DEFAULT 0, usage_json TEXT, feeder_id TEXT,
  failure_reason TEXT, failure_message TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  PRIMARY KEY (household_id, request_id));
CREATE TABLE IF NOT EXISTS desk_commitments (
  contract TEXT NOT NULL, commitment TEXT NOT NULL, household_id TEXT NOT NULL, request_id TEXT NOT NULL,
  position INTEGER NOT NULL, tx_hash TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'mined', 'failed')),
  PRIMARY KEY (contract, commitment));
CREATE INDEX IF NOT EXISTS desk_commitments_by_request ON desk_commitments(household_id, request_id, position);
CREATE TABLE IF NOT EXISTS desk_deposit_backs (
  tx_hash TEXT PRIMARY KEY, pseudonym TEXT NOT NULL, request_id TEXT NOT NULL, amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS desk_redemptions (
  pool TEXT NOT NULL, nullifier_hash TEXT NOT NULL, household_id TEXT NOT NULL, request_id TEXT NOT NULL,
  root TEXT NOT NULL, proof_json TEXT NOT NULL, tx_hash TEXT,
  PRIMARY KEY (pool, nullifier_hash));
CREATE INDEX IF NOT EXISTS desk_redemptions_by_request ON desk_redemptions(household_id, request_id);
`;

type RequestKind = "allowance" | "notes" | "deposit-back" | "redemption";
/** Kinds whose commitments go into a mixer pool (and batch together). */
const isNoteKind = (k: RequestKind | undefined) => k === "notes" || k === "deposit-back";

interface RequestRow {
  household_id: string;
  request_id: string;
  body_hash: string;
  kind: RequestKind;
  status: "pending" | "done" | "failed";
  contract: string;
  direction: Direction | null;
  cap_w: number | null;
  window_start: number | null;
  window_end: number | null;
  denomination: string | null;
  amount: number;
  usage_json: string | null;
  feeder_id: string | null;
  failure_reason: DeskRefusalReason | null;
  failure_message: string | null;
}

interface CommitmentRow {
  contract: string;
  commitment: string;
  position: number;
  tx_hash: string | null;
  status: "pending" | "sent" | "mined" | "failed";
}

/** What #chainCheck learned on chain for the request. */
interface ChainCheck {
  /** Money the deposit-back transaction moved from the pseudonym to the DSO. */
  depositedAmount?: bigint;
}

class Refusal extends Error {
  constructor(
    readonly reason: DeskRefusalReason,
    message: string,
  ) {
    super(message);
  }
}

export class AllowanceDesk {
  readonly #o: Required<Omit<AllowanceDeskOptions, "onError">> & Pick<AllowanceDeskOptions, "onError">;
  readonly #vaults = new Map<Direction, string>();
  /** Pool address by denomination (decimal string). */
  readonly #pools = new Map<string, string>();
  readonly #waiters = new Map<string, Uint8Array[]>();
  readonly #stats: DeskStats = {
    received: 0,
    refused: {},
    allowancesIssued: 0,
    notesDeposited: 0,
    notesRedeemed: 0,
    moneyRedeemed: 0,
    noteDeposits: { transactions: 0, notes: 0, gasUsed: 0 },
  };
  #router: Router | undefined;
  #poseidon: Poseidon | undefined;
  #dso = "";
  #chainId = 0n;
  #market: string | undefined;
  #boundEndpoint: string | undefined;
  #running = false;
  #sendChain: Promise<void> = Promise.resolve();
  #queue: { householdId: string; requestId: string }[] = [];
  /** Requests reserved by this run: none of their commitments can be on chain yet. */
  readonly #fresh = new Set<string>();
  #wake: (() => void) | undefined;
  #loops: Promise<void>[] = [];

  constructor(options: AllowanceDeskOptions) {
    check(typeof options.endpoint === "string" && options.endpoint.length > 0, "endpoint", "must be a ZeroMQ endpoint");
    check(options.signer?.provider != null, "signer", "must be connected to a provider");
    check(
      options.maxWindowIntervals === undefined ||
        (Number.isInteger(options.maxWindowIntervals) && options.maxWindowIntervals >= 1),
      "maxWindowIntervals",
      "must be an integer >= 1",
    );
    for (const [direction, address] of Object.entries(options.vaults)) {
      check(/^0x[0-9a-fA-F]{40}$/.test(address ?? ""), `vaults.${direction}`, "must be an address");
    }
    check(
      options.maxBatchNotes === undefined || (Number.isInteger(options.maxBatchNotes) && options.maxBatchNotes >= 64),
      "maxBatchNotes",
      "must be an integer >= 64 (one request may carry 64 notes)",
    );
    for (const [i, a] of options.pools.entries())
      check(/^0x[0-9a-fA-F]{40}$/.test(a), `pools[${i}]`, "must be an address");
    this.#o = {
      maxClockSkewMs: 30_000,
      maxWindowIntervals: DEFAULT_MAX_REQUEST_INTERVALS,
      maxEnvelopeBytes: DEFAULT_MAX_ENVELOPE_BYTES,
      maxBatchNotes: 100,
      receiptPollMs: 50,
      retryDelayMs: 500,
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as AllowanceDeskOptions),
    };
  }

  get endpoint(): string {
    if (this.#boundEndpoint === undefined)
      throw new PetraError("INVALID_ARGUMENT", "endpoint: the desk is not started");
    return this.#boundEndpoint;
  }

  get stats(): DeskStats {
    return { ...this.#stats, refused: { ...this.#stats.refused }, noteDeposits: { ...this.#stats.noteDeposits } };
  }

  /** Checks its contracts on chain, opens its tables, resumes unfinished requests, binds. */
  async start(): Promise<string> {
    if (this.#running) return this.endpoint;
    const runner = this.#o.signer;
    const dso = await runner.getAddress();
    this.#dso = getAddress(dso);
    this.#chainId = (await (runner.provider as NonNullable<Signer["provider"]>).getNetwork()).chainId;
    for (const [direction, address] of Object.entries(this.#o.vaults) as [Direction, string][]) {
      const vault = AllowanceVault__factory.connect(address, runner);
      const [d, vaultDso] = await Promise.all([vault.direction(), vault.dso()]);
      const want = direction === "production" ? 1n : -1n;
      check(BigInt(d) === want, `vaults.${direction}`, `vault ${address} mints direction ${d}, not ${want}`);
      check(vaultDso === dso, `vaults.${direction}`, `vault ${address} belongs to DSO ${vaultDso}, not ${dso}`);
      this.#vaults.set(direction, getAddress(address));
    }
    for (const address of this.#o.pools) {
      const pool = Mixer__factory.connect(address, runner);
      const [denomination, poolDso] = await Promise.all([pool.denomination(), pool.dso()]);
      check(poolDso === dso, "pools", `pool ${address} belongs to DSO ${poolDso}, not ${dso}`);
      this.#pools.set(denomination.toString(), getAddress(address));
      this.#market ??= getAddress(await pool.market());
    }
    this.#poseidon = await buildPoseidon();
    const book = this.#o.book;
    book.db.exec(SCHEMA);
    book.ensureHouseholds(this.#o.registry);
    for (const r of book.db
      .prepare("SELECT household_id, request_id FROM desk_requests WHERE status = 'pending' ORDER BY created_ms, rowid")
      .all() as { household_id: string; request_id: string }[]) {
      this.#queue.push({ householdId: r.household_id, requestId: r.request_id });
    }
    const router = new Router({ linger: 0 });
    await router.bind(this.#o.endpoint);
    this.#router = router;
    this.#boundEndpoint = router.lastEndpoint ?? this.#o.endpoint;
    this.#running = true;
    this.#loops = [this.#receiveLoop(router), this.#workLoop()];
    return this.#boundEndpoint;
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wake?.();
    this.#router?.close();
    await Promise.allSettled(this.#loops);
    await this.#sendChain.catch(() => undefined);
  }

  /** Everything the desk recorded, household by household: what a DSO-side analyst can read. */
  records(): DeskRecord[] {
    const db = this.#o.book.db;
    const rows = db.prepare("SELECT * FROM desk_requests ORDER BY created_ms, rowid").all() as RequestRow[];
    return rows.map((r) => {
      const cs = this.#commitments(r.household_id, r.request_id);
      return {
        householdId: r.household_id,
        requestId: r.request_id,
        kind: r.kind,
        status: r.status,
        contract: r.contract,
        direction: r.direction,
        capW: r.cap_w,
        windowStart: r.window_start,
        windowEnd: r.window_end,
        denomination: r.denomination,
        amount: r.amount,
        commitments: cs.map((c) => c.commitment),
        txHashes: cs.flatMap((c) => (c.tx_hash ? [c.tx_hash] : [])),
      };
    });
  }

  // ------------------------------------------------------------------ messages

  async #receiveLoop(router: Router): Promise<void> {
    try {
      for await (const frames of router) {
        const [identity, ...rest] = frames;
        if (identity === undefined) continue;
        this.#stats.received++;
        try {
          if (rest.length !== 1) {
            this.#refuse(identity, null, "MALFORMED", `expected one frame after the routing id, got ${rest.length}`);
            continue;
          }
          void this.#handle(identity, rest[0] as Uint8Array).catch((e) => {
            this.#o.onError?.(e);
            this.#refuse(identity, null, "INTERNAL_ERROR", "the desk failed on this message; it is still serving");
          });
        } catch (e) {
          this.#o.onError?.(e);
          this.#refuse(identity, null, "INTERNAL_ERROR", "the desk failed on this message; it is still serving");
        }
      }
    } catch (e) {
      if (this.#running) this.#o.onError?.(e);
    }
  }

  async #handle(identity: Uint8Array, frame: Uint8Array): Promise<void> {
    const opened = openDeskEnvelope(frame, {
      nowMs: this.#o.clock.now(),
      maxClockSkewMs: this.#o.maxClockSkewMs,
      maxBytes: this.#o.maxEnvelopeBytes,
      // A pseudonym's key is a one-off key; its Ethereum certificate is checked with the request.
      resolveKey: (from, keyHex) =>
        isPseudonymSender(from) ? hexToBytes(keyHex) : this.#o.registry.keyFor(from, keyHex),
    });
    if (!opened.ok) {
      this.#refuse(identity, opened.requestId ?? null, opened.reason, opened.detail);
      return;
    }
    const env = opened.envelope;
    const requestId = "requestId" in env.message ? env.message.requestId : null;
    // What needs the chain is checked before the book's transaction (which must not wait).
    let pre: ChainCheck;
    try {
      pre = await this.#chainCheck(env);
    } catch (e) {
      if (e instanceof Refusal) {
        this.#refuse(identity, requestId, e.reason, e.message);
        return;
      }
      // The node did not answer: the request is not taken; the household may re-send it.
      this.#o.onError?.(e);
      this.#refuse(identity, requestId, "INTERNAL_ERROR", `the desk could not check this on chain: ${String(e)}`);
      return;
    }
    const nowMs = this.#o.clock.now();
    // Nonce and effect commit together: a crash can never keep one without the other.
    const answer = this.#o.book.transaction((): (() => void) => {
      if (!this.#o.book.acceptNonce(env.keyHex, env.nonceHex, env.timestampMs, nowMs - 2 * this.#o.maxClockSkewMs)) {
        return () =>
          this.#refuse(identity, requestId, "REPLAYED_NONCE", `nonce ${env.nonceHex} already used by "${env.from}"`);
      }
      try {
        return this.#dispatch(identity, env, nowMs, pre);
      } catch (e) {
        if (e instanceof Refusal) return () => this.#refuse(identity, requestId, e.reason, e.message);
        throw e;
      }
    });
    answer();
  }

  /**
   * The chain's part of a check, before the transaction: a pseudonym's key certificate and its
   * deposit; a redemption proof against the pool (eth_call of withdraw, so the pool's own verifier
   * judges it). Skipped for a request id already known: that is answered from the book.
   */
  async #chainCheck(env: DeskEnvelope): Promise<ChainCheck> {
    const m = env.message;
    if (m.type === "depositBackRequest" && isPseudonymSender(env.from)) {
      let signer = "";
      try {
        signer = verifyMessage(
          depositBackKeyText({ chainId: this.#chainId, dso: this.#dso, keyHex: env.keyHex }),
          m.keyCertificate,
        );
      } catch {
        signer = "";
      }
      if (signer.toLowerCase() !== env.from) {
        throw new Refusal("BAD_KEY_CERTIFICATE", `keyCertificate is not ${env.from}'s signature over this key`);
      }
      if (this.#row(env.from, m.requestId)) return {};
      const market = this.#market;
      if (!market) throw new Refusal("NO_SUCH_POOL", "this desk has no mixer pools");
      const provider = this.#o.signer.provider as NonNullable<Signer["provider"]>;
      const receipt = await provider.getTransactionReceipt(m.txHash);
      if (receipt?.status !== 1) {
        throw new Refusal("DEPOSIT_NOT_FOUND", `transaction ${m.txHash} is not mined, or reverted`);
      }
      const iface = EnergyMarket__factory.createInterface();
      let amount = 0n;
      for (const log of receipt.logs) {
        if (getAddress(log.address) !== market) continue;
        const parsed = iface.parseLog(log);
        if (parsed?.name === "FinancialDeposited" && (parsed.args[0] as string).toLowerCase() === env.from) {
          amount += parsed.args[1] as bigint;
        }
      }
      if (amount === 0n) {
        throw new Refusal("DEPOSIT_NOT_FOUND", `transaction ${m.txHash} deposits no money from ${env.from}`);
      }
      return { depositedAmount: amount };
    }
    if (m.type === "noteRedemptionRequest" && !isPseudonymSender(env.from)) {
      if (this.#row(env.from, m.requestId)) return {};
      const pool = this.#poolByAddress(m.pool);
      const args = this.#withdrawArgs(m.proof, m.root, m.nullifierHash);
      try {
        await Mixer__factory.connect(pool, this.#o.signer).withdraw.staticCall(...args);
      } catch (e) {
        const name = revertName(e);
        if (name === "Mixer__InvalidProof") {
          throw new Refusal(
            "PROOF_INVALID",
            "the pool's verifier rejects the proof (recipient and relayer must be the DSO, fee 0)",
          );
        }
        if (name === "Mixer__NullifierSpent") throw new Refusal("NULLIFIER_SPENT", `note ${m.nullifierHash} is spent`);
        if (name === "Mixer__UnknownRoot")
          throw new Refusal("UNKNOWN_ROOT", `root ${m.root} is not a recent root of the pool`);
        if (name !== undefined) throw new Refusal("PROOF_INVALID", `the pool refuses the withdrawal: ${name}`);
        throw e;
      }
    }
    return {};
  }

  #poolByAddress(address: string): string {
    const pool = [...this.#pools.values()].find((p) => p === getAddress(address));
    if (!pool) throw new Refusal("NO_SUCH_POOL", `${address} is not one of this desk's mixer pools`);
    return pool;
  }

  /** Mixer.withdraw's arguments for a redemption: to the DSO, relayed by the DSO, fee 0. */
  #withdrawArgs(
    proof: NoteRedemptionRequest["proof"],
    root: string,
    nullifierHash: string,
  ): [
    [bigint, bigint],
    [[bigint, bigint], [bigint, bigint]],
    [bigint, bigint],
    bigint,
    bigint,
    string,
    string,
    bigint,
  ] {
    const b = BigInt;
    return [
      [b(proof.pA[0]), b(proof.pA[1])],
      [
        [b(proof.pB[0][0]), b(proof.pB[0][1])],
        [b(proof.pB[1][0]), b(proof.pB[1][1])],
      ],
      [b(proof.pC[0]), b(proof.pC[1])],
      b(root),
      b(nullifierHash),
      this.#dso,
      this.#dso,
      0n,
    ];
  }

  /** Runs inside the book's transaction; returns what to send once it committed. */
  #dispatch(identity: Uint8Array, env: DeskEnvelope, nowMs: number, pre: ChainCheck): () => void {
    const m = env.message;
    if (isPseudonymSender(env.from)) {
      if (m.type !== "depositBackRequest") {
        throw new Refusal("INVALID_REQUEST", `a pseudonym may send only depositBackRequest, not "${m.type}"`);
      }
      return this.#depositBack(identity, env.from, m, nowMs, pre);
    }
    const household = this.#o.registry.household(env.from) as Household;
    switch (m.type) {
      case "allowanceRequest":
        return this.#allowance(identity, household, m, nowMs);
      case "noteDepositRequest":
        return this.#notes(identity, household, m, nowMs);
      case "noteRedemptionRequest":
        return this.#redemption(identity, household, m, nowMs);
      case "depositBackRequest":
        throw new Refusal(
          "INVALID_REQUEST",
          "a deposit-back is claimed by the pseudonym that made it, never under a household's name",
        );
      case "allowanceIssued":
      case "notesDeposited":
      case "noteRedeemed":
      case "deskRefused":
        throw new Refusal("INVALID_REQUEST", `the desk does not accept "${m.type}" messages`);
      default: {
        const never: never = m;
        throw new PetraError("INVALID_MESSAGE", `unhandled message ${(never as { type: string }).type}`);
      }
    }
  }

  /** An existing request with the same id: the same answer (or a conflict). Undefined when new. */
  #existing(identity: Uint8Array, householdId: string, requestId: string, bodyHash: string): (() => void) | undefined {
    const row = this.#row(householdId, requestId);
    if (!row) return undefined;
    if (row.body_hash !== bodyHash) {
      throw new Refusal("REQUEST_CONFLICT", `requestId "${requestId}" was already used for a different request`);
    }
    if (row.status === "pending") return () => this.#addWaiter(householdId, requestId, identity);
    return () => this.#answer(identity, row);
  }

  #allowance(identity: Uint8Array, household: Household, m: AllowanceRequest, nowMs: number): () => void {
    const vault = this.#vaults.get(m.direction);
    if (!vault) throw new Refusal("DIRECTION_DISABLED", `this desk issues no ${m.direction} allowances`);
    if (m.windowStart > m.windowEnd) {
      throw new Refusal("INVALID_REQUEST", `windowStart ${m.windowStart} is after windowEnd ${m.windowEnd}`);
    }
    const length = m.windowEnd - m.windowStart + 1;
    if (length > this.#o.maxWindowIntervals) {
      throw new Refusal("WINDOW_TOO_LONG", `window of ${length} intervals; limit ${this.#o.maxWindowIntervals}`);
    }
    const formError = commitmentFormError(m.inner);
    if (formError) throw new Refusal("INVALID_COMMITMENT", `inner ${formError}`);
    const bodyHash = hashOf([m.direction, m.capW, m.windowStart, m.windowEnd, m.inner]);
    const existing = this.#existing(identity, household.id, m.requestId, bodyHash);
    if (existing) return existing;
    const poseidon = this.#poseidon;
    if (!poseidon) throw new Refusal("INTERNAL_ERROR", "the desk is not started");
    // The leaf the desk inserts is its own hash of what it approved: the household chooses only inner.
    const leaf = allowanceLeaf(
      poseidon,
      { capW: BigInt(m.capW), windowStart: BigInt(m.windowStart), windowEnd: BigInt(m.windowEnd) },
      BigInt(m.inner),
    ).toString();
    this.#checkFresh(vault, [leaf]);
    const feeder = this.#o.registry.feeder(household.feederId);
    if (!feeder) throw new Refusal("INTERNAL_ERROR", `household "${household.id}" has no feeder in the registry`);
    const intervals = new Set<number>();
    for (let t = m.windowStart; t <= m.windowEnd; t++) intervals.add(t);
    // The cap as one asset over the whole window: the DSO's own per-interval policy, unchanged.
    const verdict = checkWithdrawal(
      {
        assets: [{ powerW: m.direction === "production" ? m.capW : -m.capW, start: m.windowStart, end: m.windowEnd }],
        financial: 0,
        balance: this.#o.book.balance(household.id) ?? 0,
        limits: {
          pvCapacityW: household.pvCapacityW,
          connectionLimitW: household.connectionLimitW,
          feederRatingW: feeder.ratingW,
        },
        householdUsage: this.#readUsage("household", household.id, intervals),
        feederUsage: this.#readUsage("feeder", feeder.id, intervals),
      },
      this.#o.maxWindowIntervals,
    );
    if (!verdict.ok) throw new Refusal(verdict.reason, verdict.message);
    const db = this.#o.book.db;
    db.prepare(
      `INSERT INTO desk_requests (household_id, request_id, body_hash, kind, status, contract, direction, cap_w,
         window_start, window_end, usage_json, feeder_id, created_ms, updated_ms)
       VALUES (?, ?, ?, 'allowance', 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      household.id,
      m.requestId,
      bodyHash,
      vault,
      m.direction,
      m.capW,
      m.windowStart,
      m.windowEnd,
      JSON.stringify([...verdict.added.entries()]),
      feeder.id,
      nowMs,
      nowMs,
    );
    this.#insertCommitments(vault, household.id, m.requestId, [leaf]);
    this.#o.book.addUsage(household.id, feeder.id, verdict.added, 1);
    return this.#enqueue(identity, household.id, m.requestId);
  }

  /** The pool of a request's denomination, once its note commitments are well formed and distinct. */
  #notePool(m: { denomination: string; commitments: readonly string[] }): string {
    const pool = this.#pools.get(BigInt(m.denomination).toString());
    if (!pool) {
      throw new Refusal(
        "NO_SUCH_POOL",
        `no mixer pool of denomination ${m.denomination}; pools: ${[...this.#pools.keys()].join(", ")}`,
      );
    }
    for (const [i, c] of m.commitments.entries()) {
      const formError = commitmentFormError(c);
      if (formError) throw new Refusal("INVALID_COMMITMENT", `commitments[${i}] ${formError}`);
    }
    if (new Set(m.commitments.map((c) => BigInt(c))).size !== m.commitments.length) {
      throw new Refusal("INVALID_COMMITMENT", "commitments must be distinct");
    }
    return pool;
  }

  #notes(identity: Uint8Array, household: Household, m: NoteDepositRequest, nowMs: number): () => void {
    const pool = this.#notePool(m);
    const bodyHash = hashOf([m.denomination, ...m.commitments]);
    const existing = this.#existing(identity, household.id, m.requestId, bodyHash);
    if (existing) return existing;
    this.#checkFresh(pool, m.commitments);
    const amount = BigInt(m.denomination) * BigInt(m.commitments.length);
    const balance = this.#o.book.balance(household.id);
    if (balance === undefined) throw new Refusal("INTERNAL_ERROR", `no account for household "${household.id}"`);
    if (amount > BigInt(balance)) {
      throw new Refusal(
        "INSUFFICIENT_BALANCE",
        `${m.commitments.length} x ${m.denomination} = ${amount} exceeds balance ${balance}`,
      );
    }
    const db = this.#o.book.db;
    db.prepare(
      `INSERT INTO desk_requests (household_id, request_id, body_hash, kind, status, contract, denomination, amount,
         created_ms, updated_ms) VALUES (?, ?, ?, 'notes', 'pending', ?, ?, ?, ?, ?)`,
    ).run(household.id, m.requestId, bodyHash, pool, m.denomination, Number(amount), nowMs, nowMs);
    this.#insertCommitments(pool, household.id, m.requestId, m.commitments);
    db.prepare("UPDATE households SET balance = balance - ? WHERE id = ?").run(Number(amount), household.id);
    return this.#enqueue(identity, household.id, m.requestId);
  }

  #depositBack(
    identity: Uint8Array,
    pseudonym: string,
    m: DepositBackRequest,
    nowMs: number,
    pre: ChainCheck,
  ): () => void {
    const pool = this.#notePool(m);
    const bodyHash = hashOf([m.txHash, m.denomination, ...m.commitments]);
    const existing = this.#existing(identity, pseudonym, m.requestId, bodyHash);
    if (existing) return existing;
    const db = this.#o.book.db;
    const claimed = db.prepare("SELECT request_id FROM desk_deposit_backs WHERE tx_hash = ?").get(m.txHash) as
      | { request_id: string }
      | undefined;
    if (claimed) throw new Refusal("DEPOSIT_CLAIMED", `the deposit in ${m.txHash} was claimed before`);
    const amount = BigInt(m.denomination) * BigInt(m.commitments.length);
    if (pre.depositedAmount !== amount) {
      throw new Refusal(
        "INVALID_REQUEST",
        `${m.commitments.length} x ${m.denomination} = ${amount}, but ${m.txHash} deposited ${pre.depositedAmount ?? 0n}`,
      );
    }
    this.#checkFresh(pool, m.commitments);
    db.prepare(
      `INSERT INTO desk_requests (household_id, request_id, body_hash, kind, status, contract, denomination, amount,
         created_ms, updated_ms) VALUES (?, ?, ?, 'deposit-back', 'pending', ?, ?, ?, ?, ?)`,
    ).run(pseudonym, m.requestId, bodyHash, pool, m.denomination, Number(amount), nowMs, nowMs);
    db.prepare("INSERT INTO desk_deposit_backs (tx_hash, pseudonym, request_id, amount) VALUES (?, ?, ?, ?)").run(
      m.txHash,
      pseudonym,
      m.requestId,
      Number(amount),
    );
    this.#insertCommitments(pool, pseudonym, m.requestId, m.commitments);
    return this.#enqueue(identity, pseudonym, m.requestId);
  }

  #redemption(identity: Uint8Array, household: Household, m: NoteRedemptionRequest, nowMs: number): () => void {
    const pool = this.#poolByAddress(m.pool);
    const denomination = [...this.#pools.entries()].find(([, a]) => a === pool)?.[0] as string;
    const proofJson = JSON.stringify(m.proof);
    const bodyHash = hashOf([pool, m.root, m.nullifierHash, proofJson]);
    const existing = this.#existing(identity, household.id, m.requestId, bodyHash);
    if (existing) return existing;
    const db = this.#o.book.db;
    const nullifierHash = BigInt(m.nullifierHash).toString();
    const before = db
      .prepare("SELECT request_id FROM desk_redemptions WHERE pool = ? AND nullifier_hash = ?")
      .get(pool, nullifierHash) as { request_id: string } | undefined;
    if (before) throw new Refusal("NULLIFIER_SPENT", `note ${nullifierHash} was redeemed before`);
    db.prepare(
      `INSERT INTO desk_requests (household_id, request_id, body_hash, kind, status, contract, denomination, amount,
         created_ms, updated_ms) VALUES (?, ?, ?, 'redemption', 'pending', ?, ?, ?, ?, ?)`,
    ).run(household.id, m.requestId, bodyHash, pool, denomination, Number(denomination), nowMs, nowMs);
    db.prepare(
      `INSERT INTO desk_redemptions (pool, nullifier_hash, household_id, request_id, root, proof_json)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(pool, nullifierHash, household.id, m.requestId, BigInt(m.root).toString(), proofJson);
    return this.#enqueue(identity, household.id, m.requestId);
  }

  #checkFresh(contract: string, commitments: readonly string[]): void {
    const q = this.#o.book.db.prepare("SELECT 1 FROM desk_commitments WHERE contract = ? AND commitment = ?");
    for (const c of commitments) {
      if (q.get(contract, BigInt(c).toString()))
        throw new Refusal("COMMITMENT_TAKEN", `commitment ${c} was issued before`);
    }
  }

  #insertCommitments(contract: string, householdId: string, requestId: string, commitments: readonly string[]): void {
    const ins = this.#o.book.db.prepare(
      `INSERT INTO desk_commitments (contract, commitment, household_id, request_id, position, status)
       VALUES (?, ?, ?, ?, ?, 'pending')`,
    );
    for (const [i, c] of commitments.entries()) ins.run(contract, BigInt(c).toString(), householdId, requestId, i);
  }

  #enqueue(identity: Uint8Array, householdId: string, requestId: string): () => void {
    return () => {
      this.#fresh.add(`${householdId}\u0000${requestId}`);
      this.#addWaiter(householdId, requestId, identity);
      this.#queue.push({ householdId, requestId });
      this.#wake?.();
    };
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
    this.#waiters.delete(key);
    const row = this.#row(householdId, requestId);
    if (!list || !row) return;
    for (const identity of list) this.#answer(identity, row);
  }

  #answer(identity: Uint8Array, row: RequestRow): void {
    if (row.status === "failed") {
      this.#refuse(identity, row.request_id, row.failure_reason ?? "CHAIN_FAILED", row.failure_message ?? "failed");
      return;
    }
    if (row.status !== "done") return;
    const cs = this.#commitments(row.household_id, row.request_id);
    if (row.kind === "allowance") {
      this.#send(identity, {
        type: "allowanceIssued",
        requestId: row.request_id,
        direction: row.direction as Direction,
        vault: row.contract,
        commitment: cs[0]?.commitment ?? "0",
        txHash: cs[0]?.tx_hash ?? "",
      });
    } else if (row.kind === "redemption") {
      const r = this.#redemptionRow(row.household_id, row.request_id);
      this.#send(identity, {
        type: "noteRedeemed",
        requestId: row.request_id,
        pool: row.contract,
        denomination: row.denomination ?? "0",
        nullifierHash: r?.nullifier_hash ?? "0",
        txHash: r?.tx_hash ?? "",
        balance: this.#o.book.balance(row.household_id) ?? 0,
      });
    } else {
      this.#send(identity, {
        type: "notesDeposited",
        requestId: row.request_id,
        pool: row.contract,
        denomination: row.denomination ?? "0",
        commitments: cs.map((c) => c.commitment),
        txHashes: cs.map((c) => c.tx_hash ?? ""),
        // A pseudonym has no account at the DSO.
        balance: row.kind === "notes" ? (this.#o.book.balance(row.household_id) ?? 0) : 0,
      });
    }
  }

  #refuse(identity: Uint8Array, requestId: string | null, reason: DeskRefusalReason, message: string): void {
    this.#stats.refused[reason] = (this.#stats.refused[reason] ?? 0) + 1;
    this.#send(identity, { type: "deskRefused", requestId, reason, message: message.slice(0, 2000) });
  }

  #send(identity: Uint8Array, message: DeskAnswer): void {
    const router = this.#router;
    if (!router || !this.#running) return;
    const bytes = sealDeskEnvelope({ from: "dso", key: this.#o.signingKey, message, timestampMs: this.#o.clock.now() });
    this.#sendChain = this.#sendChain
      .then(() => (router.closed ? undefined : router.send([identity, bytes])))
      .catch((e) => this.#o.onError?.(e));
  }

  // ------------------------------------------------------------------ chain

  async #workLoop(): Promise<void> {
    while (this.#running) {
      const item = this.#queue[0];
      if (!item) {
        if (!this.#running) break;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      const batch = this.#batchFrom(item);
      try {
        const kind = this.#row(item.householdId, item.requestId)?.kind;
        if (kind === "redemption") {
          await this.#settleRedemption(item.householdId, item.requestId);
        } else if (batch.length > 1 || isNoteKind(kind)) {
          await this.#settleNotes(batch);
        } else {
          await this.#settle(item.householdId, item.requestId);
        }
        const done = new Set(batch.map((b) => `${b.householdId}\u0000${b.requestId}`));
        this.#queue = this.#queue.filter((q) => !done.has(`${q.householdId}\u0000${q.requestId}`));
        for (const b of batch) {
          this.#fresh.delete(`${b.householdId}\u0000${b.requestId}`);
          this.#notify(b.householdId, b.requestId);
        }
      } catch (e) {
        // The node did not answer: keep the requests and try again.
        this.#o.onError?.(e);
        if (this.#running) await this.#o.clock.sleep(this.#o.retryDelayMs);
      }
    }
  }

  /**
   * The head of the queue and, when it is a note deposit, every other queued note deposit into the
   * same pool, up to maxBatchNotes notes: one depositMany pays for all of them.
   */
  #batchFrom(head: { householdId: string; requestId: string }): { householdId: string; requestId: string }[] {
    const headRow = this.#row(head.householdId, head.requestId);
    if (!isNoteKind(headRow?.kind)) return [head];
    const count = (h: string, r: string) =>
      this.#commitments(h, r).filter((c) => c.status === "pending" || c.status === "sent").length;
    const batch = [head];
    let notes = count(head.householdId, head.requestId);
    for (const q of this.#queue) {
      if (q === head) continue;
      const row = this.#row(q.householdId, q.requestId);
      if (!isNoteKind(row?.kind) || row?.status !== "pending" || row.contract !== headRow?.contract) continue;
      const n = count(q.householdId, q.requestId);
      if (notes + n > this.#o.maxBatchNotes) break;
      batch.push(q);
      notes += n;
    }
    return batch;
  }

  /**
   * Note deposits of one pool in one depositMany. Commitments of a request reserved before a
   * restart are looked up on chain first (the Deposit event indexes the commitment), so after a
   * crash only those not yet in the tree are deposited, and none twice. depositMany is atomic: if
   * the pool refuses the batch, each request is retried alone, so one bad request cannot fail the
   * others.
   */
  async #settleNotes(items: readonly { householdId: string; requestId: string }[]): Promise<void> {
    const rows = items
      .map((i) => this.#row(i.householdId, i.requestId))
      .filter((r): r is RequestRow => r?.status === "pending" && isNoteKind(r.kind));
    if (rows.length === 0) return;
    const pool = (rows[0] as RequestRow).contract;
    const db = this.#o.book.db;
    const setStatus = db.prepare(
      "UPDATE desk_commitments SET status = ?, tx_hash = ? WHERE contract = ? AND commitment = ?",
    );
    const isFresh = (r: RequestRow) => this.#fresh.has(`${r.household_id}\u0000${r.request_id}`);
    const toSend: CommitmentRow[] = [];
    for (const r of rows) {
      for (const c of this.#commitments(r.household_id, r.request_id)) {
        if (c.status !== "pending") continue;
        const onChain = isFresh(r) ? undefined : await this.#insertedBy("notes", c.contract, c.commitment);
        if (onChain) setStatus.run("mined", onChain, c.contract, c.commitment);
        else toSend.push(c);
      }
    }
    if (toSend.length > 0) {
      try {
        const tx = await Mixer__factory.connect(pool, this.#o.signer).depositMany(
          toSend.map((c) => BigInt(c.commitment)),
        );
        db.transaction(() => {
          for (const c of toSend) setStatus.run("sent", tx.hash, c.contract, c.commitment);
        })();
      } catch (e) {
        if (!isEthersError(e, "CALL_EXCEPTION") && !/revert/i.test(String((e as Error)?.message))) {
          // The send may have reached the node before it failed: the retry looks on chain first.
          for (const r of rows) this.#fresh.delete(`${r.household_id}\u0000${r.request_id}`);
          throw e;
        }
        if (rows.length > 1) {
          for (const r of rows) await this.#settleNotes([{ householdId: r.household_id, requestId: r.request_id }]);
          return;
        }
        // One request the pool refuses: what an earlier send of ours put in stays, the rest fails.
        for (const c of toSend) {
          const ours = await this.#insertedBy("notes", c.contract, c.commitment);
          setStatus.run(ours ? "mined" : "failed", ours ?? null, c.contract, c.commitment);
        }
        this.#o.onError?.(
          new PetraError("TX_FAILED", `desk: depositMany of ${toSend.length} note(s) refused by pool ${pool}`, {
            requestId: (rows[0] as RequestRow).request_id,
          }),
        );
      }
    }
    const sentNow = new Set(toSend.map((c) => c.commitment));
    const waiting = new Map<string, CommitmentRow[]>();
    for (const r of rows) {
      for (const c of this.#commitments(r.household_id, r.request_id)) {
        if (c.status !== "sent" || !c.tx_hash) continue;
        waiting.set(c.tx_hash, [...(waiting.get(c.tx_hash) ?? []), c]);
      }
    }
    for (const [hash, cs] of waiting) {
      const receipt = await this.#receipt(hash);
      if (receipt === "gone") {
        for (const c of cs) setStatus.run("pending", null, c.contract, c.commitment);
        throw new PetraError("TX_FAILED", `desk: transaction ${hash} vanished from the node`);
      }
      db.transaction(() => {
        for (const c of cs) setStatus.run(receipt.ok ? "mined" : "failed", hash, c.contract, c.commitment);
      })();
      // Gas per note as the desk pays it: only transactions this loop sent, counted once.
      if (receipt.ok && cs.every((c) => sentNow.has(c.commitment))) {
        this.#stats.noteDeposits.transactions++;
        this.#stats.noteDeposits.notes += cs.length;
        this.#stats.noteDeposits.gasUsed += Number(receipt.gasUsed);
      }
    }
    for (const r of rows) this.#finish(r, this.#commitments(r.household_id, r.request_id));
  }

  /** Puts an allowance request's leaf into its vault (once), then settles the request in the book. */
  async #settle(householdId: string, requestId: string): Promise<void> {
    const row = this.#row(householdId, requestId);
    if (row?.status !== "pending") return;
    const db = this.#o.book.db;
    const setStatus = db.prepare(
      "UPDATE desk_commitments SET status = ?, tx_hash = ? WHERE contract = ? AND commitment = ?",
    );
    const cs = this.#commitments(householdId, requestId);
    const fresh = this.#fresh.has(`${householdId}\u0000${requestId}`);
    // Broadcast everything first, so that one request costs one block, then wait.
    for (const c of cs) {
      if (c.status !== "pending") continue;
      // Only a request from before a restart can have reached the chain unrecorded.
      const onChain = fresh ? undefined : await this.#insertedBy(row.kind, c.contract, c.commitment);
      if (onChain) {
        setStatus.run("mined", onChain, c.contract, c.commitment);
        continue;
      }
      try {
        // Note deposits never come here: #settleNotes pays them with depositMany.
        const tx = await AllowanceVault__factory.connect(c.contract, this.#o.signer).issue(BigInt(c.commitment));
        setStatus.run("sent", tx.hash, c.contract, c.commitment);
      } catch (e) {
        if (!isEthersError(e, "CALL_EXCEPTION") && !/revert/i.test(String((e as Error)?.message))) {
          // The send may have reached the node before it failed: the retry looks on chain first.
          this.#fresh.delete(`${householdId}\u0000${requestId}`);
          throw e;
        }
        // Refused by the contract: either an earlier send of ours went in after all, or it fails.
        const ours = await this.#insertedBy(row.kind, c.contract, c.commitment);
        if (ours) {
          setStatus.run("mined", ours, c.contract, c.commitment);
          continue;
        }
        setStatus.run("failed", null, c.contract, c.commitment);
        this.#o.onError?.(
          new PetraError("TX_FAILED", `desk: ${row.kind} ${c.commitment} refused by the contract`, { requestId }),
        );
      }
    }
    for (const c of this.#commitments(householdId, requestId)) {
      if (c.status !== "sent" || !c.tx_hash) continue;
      const receipt = await this.#waitReceipt(c.tx_hash);
      if (receipt === "gone") {
        setStatus.run("pending", null, c.contract, c.commitment);
        throw new PetraError("TX_FAILED", `desk: transaction ${c.tx_hash} vanished from the node`, { requestId });
      }
      setStatus.run(receipt ? "mined" : "failed", c.tx_hash, c.contract, c.commitment);
    }
    this.#finish(row, this.#commitments(householdId, requestId));
  }

  /**
   * Submits a redemption's withdrawal (once) and credits the household when it is mined. A
   * redemption from before a restart is looked up on chain first: a Withdrawal to the DSO with its
   * nullifier hash is the DSO's money, whoever sent it, and credits; a refused one credits nothing.
   */
  async #settleRedemption(householdId: string, requestId: string): Promise<void> {
    const row = this.#row(householdId, requestId);
    const r = this.#redemptionRow(householdId, requestId);
    if (row?.status !== "pending" || !r) return;
    const db = this.#o.book.db;
    const setHash = db.prepare("UPDATE desk_redemptions SET tx_hash = ? WHERE pool = ? AND nullifier_hash = ?");
    const fresh = this.#fresh.has(`${householdId}\u0000${requestId}`);
    let hash = r.tx_hash ?? (fresh ? undefined : await this.#redeemedBy(r.pool, r.nullifier_hash));
    if (!hash) {
      try {
        const tx = await Mixer__factory.connect(r.pool, this.#o.signer).withdraw(
          ...this.#withdrawArgs(JSON.parse(r.proof_json) as NoteRedemptionRequest["proof"], r.root, r.nullifier_hash),
        );
        hash = tx.hash;
      } catch (e) {
        if (!isEthersError(e, "CALL_EXCEPTION") && !/revert/i.test(String((e as Error)?.message))) {
          this.#fresh.delete(`${householdId}\u0000${requestId}`);
          throw e;
        }
        hash = await this.#redeemedBy(r.pool, r.nullifier_hash);
        if (!hash) {
          const name = revertName(e) ?? "reverted";
          this.#failRedemption(row, `the pool refused the withdrawal (${name}); nothing credited`);
          return;
        }
      }
      setHash.run(hash, r.pool, r.nullifier_hash);
    }
    const receipt = await this.#receipt(hash);
    if (receipt === "gone") {
      setHash.run(null, r.pool, r.nullifier_hash);
      throw new PetraError("TX_FAILED", `desk: transaction ${hash} vanished from the node`, { requestId });
    }
    if (!receipt.ok) {
      const other = await this.#redeemedBy(r.pool, r.nullifier_hash);
      if (!other) {
        this.#failRedemption(row, `withdrawal ${hash} reverted; nothing credited`);
        return;
      }
      setHash.run(other, r.pool, r.nullifier_hash);
    }
    const amount = Number(row.amount);
    const nowMs = this.#o.clock.now();
    this.#o.book.transaction(() => {
      const done = db
        .prepare(
          "UPDATE desk_requests SET status = 'done', updated_ms = ? WHERE household_id = ? AND request_id = ? AND status = 'pending'",
        )
        .run(nowMs, householdId, requestId);
      // The status flip and the credit commit together: a note credits once, whatever restarts.
      if (done.changes === 1) {
        db.prepare("UPDATE households SET balance = balance + ? WHERE id = ?").run(amount, householdId);
        this.#stats.notesRedeemed++;
        this.#stats.moneyRedeemed += amount;
      }
    });
  }

  #failRedemption(row: RequestRow, message: string): void {
    this.#o.book.db
      .prepare(
        `UPDATE desk_requests SET status = 'failed', failure_reason = 'CHAIN_FAILED', failure_message = ?, updated_ms = ?
         WHERE household_id = ? AND request_id = ?`,
      )
      .run(message, this.#o.clock.now(), row.household_id, row.request_id);
  }

  /** The transaction that spent `nullifierHash` to the DSO, if the chain has one. */
  async #redeemedBy(pool: string, nullifierHash: string): Promise<string | undefined> {
    const mixer = Mixer__factory.connect(pool, this.#o.signer);
    const logs = await mixer.queryFilter(mixer.filters.Withdrawal(this.#dso));
    return logs.find((l) => l.args.nullifierHash.toString() === nullifierHash)?.transactionHash;
  }

  #redemptionRow(
    householdId: string,
    requestId: string,
  ): { pool: string; nullifier_hash: string; root: string; proof_json: string; tx_hash: string | null } | undefined {
    return this.#o.book.db
      .prepare("SELECT * FROM desk_redemptions WHERE household_id = ? AND request_id = ?")
      .get(householdId, requestId) as
      | { pool: string; nullifier_hash: string; root: string; proof_json: string; tx_hash: string | null }
      | undefined;
  }

  #finish(row: RequestRow, cs: CommitmentRow[]): void {
    const db = this.#o.book.db;
    const failed = cs.filter((c) => c.status === "failed").length;
    const nowMs = this.#o.clock.now();
    this.#o.book.transaction(() => {
      if (failed === 0) {
        db.prepare(
          "UPDATE desk_requests SET status = 'done', updated_ms = ? WHERE household_id = ? AND request_id = ?",
        ).run(nowMs, row.household_id, row.request_id);
        if (row.kind === "allowance") this.#stats.allowancesIssued++;
        else this.#stats.notesDeposited += cs.length;
        return;
      }
      // Refund what did not go in: the notes that failed, or the allowance's usage.
      if (row.kind === "notes") {
        const refund = Number(BigInt(row.denomination ?? "0") * BigInt(failed));
        db.prepare("UPDATE households SET balance = balance + ? WHERE id = ?").run(refund, row.household_id);
        this.#stats.notesDeposited += cs.length - failed;
      } else if (row.usage_json && row.feeder_id) {
        const added = new Map<number, IntervalUsage>(JSON.parse(row.usage_json) as [number, IntervalUsage][]);
        this.#o.book.addUsage(row.household_id, row.feeder_id, added, -1);
      }
      db.prepare(
        `UPDATE desk_requests SET status = 'failed', failure_reason = 'CHAIN_FAILED', failure_message = ?, updated_ms = ?
         WHERE household_id = ? AND request_id = ?`,
      ).run(
        row.kind === "deposit-back"
          ? `${failed} of ${cs.length} commitment(s) refused on chain; the deposit stays claimed by this request`
          : `${failed} of ${cs.length} commitment(s) refused on chain (refunded)`,
        nowMs,
        row.household_id,
        row.request_id,
      );
    });
  }

  /** The transaction that inserted `commitment`, if the chain has it (the event's commitment is indexed). */
  async #insertedBy(kind: RequestKind, contract: string, commitment: string): Promise<string | undefined> {
    const c = BigInt(commitment);
    if (kind === "allowance") {
      const vault = AllowanceVault__factory.connect(contract, this.#o.signer);
      const logs = await vault.queryFilter(vault.filters.AllowanceIssued(c));
      return logs[0]?.transactionHash;
    }
    const pool = Mixer__factory.connect(contract, this.#o.signer);
    const logs = await pool.queryFilter(pool.filters.Deposit(c));
    return logs[0]?.transactionHash;
  }

  /** true = mined and succeeded, false = reverted, "gone" = the node forgot it. */
  async #waitReceipt(hash: string): Promise<boolean | "gone"> {
    const r = await this.#receipt(hash);
    return r === "gone" ? r : r.ok;
  }

  async #receipt(hash: string): Promise<{ ok: boolean; gasUsed: bigint } | "gone"> {
    const provider = this.#o.signer.provider;
    if (!provider) throw new PetraError("INVALID_ARGUMENT", "signer: not connected to a provider");
    for (let polls = 1; ; polls++) {
      const receipt = await provider.getTransactionReceipt(hash);
      if (receipt) return { ok: receipt.status === 1, gasUsed: receipt.gasUsed };
      if (polls % 400 === 0 && (await provider.getTransaction(hash)) === null) return "gone";
      if (!this.#running) throw new PetraError("TX_FAILED", "desk stopped while waiting for a receipt");
      await this.#o.clock.sleep(this.#o.receiptPollMs);
    }
  }

  // ------------------------------------------------------------------ book

  #row(householdId: string, requestId: string): RequestRow | undefined {
    return this.#o.book.db
      .prepare("SELECT * FROM desk_requests WHERE household_id = ? AND request_id = ?")
      .get(householdId, requestId) as RequestRow | undefined;
  }

  #commitments(householdId: string, requestId: string): CommitmentRow[] {
    return this.#o.book.db
      .prepare(
        "SELECT contract, commitment, position, tx_hash, status FROM desk_commitments WHERE household_id = ? AND request_id = ? ORDER BY position",
      )
      .all(householdId, requestId) as CommitmentRow[];
  }

  /** The account book's per-interval usage table, which the DSO's direct mints count too. */
  #readUsage(scope: "household" | "feeder", id: string, intervals: Set<number>): Map<number, IntervalUsage> {
    const q = this.#o.book.db.prepare(
      "SELECT production_w, consumption_w FROM usage WHERE scope = ? AND scope_id = ? AND interval = ?",
    );
    const out = new Map<number, IntervalUsage>();
    for (const t of intervals) {
      const row = q.get(scope, id, t) as { production_w: number; consumption_w: number } | undefined;
      if (row) out.set(t, { productionW: row.production_w, consumptionW: row.consumption_w });
    }
    return out;
  }
}

/**
 * The custom error a call reverted with: ethers decodes it over JSON-RPC (`revert`), the in-process
 * Hardhat provider only names it in the message. Undefined when the call did not revert.
 */
function revertName(e: unknown): string | undefined {
  const decoded = (e as { revert?: { name?: string } })?.revert?.name;
  if (decoded) return decoded;
  const data = (e as { data?: unknown })?.data;
  if (typeof data === "string" && data.startsWith("0x")) {
    const parsed = Mixer__factory.createInterface().parseError(data);
    if (parsed) return parsed.name;
  }
  const m = /reverted with custom error '(\w+)\(/.exec(String((e as Error)?.message));
  if (m) return m[1];
  if (isEthersError(e, "CALL_EXCEPTION") || /revert/i.test(String((e as Error)?.message))) return "reverted";
  return undefined;
}

function hashOf(parts: readonly (string | number)[]): string {
  return bytesToHex(sha256(JSON.stringify(parts)));
}

/**
 * The desk's records of money coming back in zk mode, as the attack suite's desk-view heuristic
 * reads them (desk-view.json): per finished deposit-back the pseudonym and its notes, per finished
 * redemption the household and its note, with the desk's time of receipt. Undefined for a DSO
 * database without a desk (a run not in zk mode).
 */
export function exportDeskView(dbPath: string): DeskView | undefined {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'desk_requests'").get())
      return undefined;
    const rows = db
      .prepare(
        `SELECT household_id AS who, kind, denomination, amount, created_ms AS atMs FROM desk_requests
         WHERE kind IN ('deposit-back', 'redemption') AND status = 'done' ORDER BY created_ms, household_id, request_id`,
      )
      .all() as { who: string; kind: string; denomination: string; amount: number; atMs: number }[];
    const view: DeskView = { depositBacks: [], redemptions: [] };
    for (const r of rows) {
      const count = Number(BigInt(r.amount) / BigInt(r.denomination));
      if (r.kind === "deposit-back") {
        view.depositBacks.push({ pseudonym: r.who, denomination: r.denomination, count, atMs: r.atMs });
      } else {
        view.redemptions.push({ household: r.who, denomination: r.denomination, count, atMs: r.atMs });
      }
    }
    return view;
  } finally {
    db.close();
  }
}
