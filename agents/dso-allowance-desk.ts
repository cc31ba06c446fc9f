import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";
import { getAddress, isError as isEthersError, type Signer } from "ethers";
import { Router } from "zeromq";
import { check, PetraError } from "../common/errors";
import { AllowanceVault__factory, Mixer__factory } from "../typechain-types";
import type { AccountBook } from "./account-book";
import {
  type AllowanceRequest,
  commitmentFormError,
  type DeskAnswer,
  type DeskEnvelope,
  type DeskRefusalReason,
  type Direction,
  type NoteDepositRequest,
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
 * - inserts an allowance commitment the household computed into the AllowanceVault of the
 *   requested direction, after checking the opened cap and window against the household's limit
 *   (PV capacity for production, connection limit for consumption) and the feeder's rating, per
 *   interval of the window, exactly as it checks a direct mint (agents/dso-policy.ts); and
 * - pays money from the household's account into the Mixer as fixed-denomination notes whose
 *   commitments the household supplies.
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
 * What the desk cannot check: that the commitment really hides the cap and window the household
 * opened. It learns neither secret nor nullifier (it must not: the nullifier hash would link the
 * spend to the household), and a Poseidon commitment cannot be opened in part. A household could
 * commit to a larger cap than it opened. Closing that needs a proof of the commitment's form at
 * issue time (a small circuit), see the README.
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
}

/** One row of the desk's records, as the DSO keeps them. */
export interface DeskRecord {
  householdId: string;
  requestId: string;
  kind: "allowance" | "notes";
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
  kind TEXT NOT NULL CHECK (kind IN ('allowance', 'notes')),
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
`;

interface RequestRow {
  household_id: string;
  request_id: string;
  body_hash: string;
  kind: "allowance" | "notes";
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
  readonly #stats: DeskStats = { received: 0, refused: {}, allowancesIssued: 0, notesDeposited: 0 };
  #router: Router | undefined;
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
    for (const [i, a] of options.pools.entries())
      check(/^0x[0-9a-fA-F]{40}$/.test(a), `pools[${i}]`, "must be an address");
    this.#o = {
      maxClockSkewMs: 30_000,
      maxWindowIntervals: DEFAULT_MAX_REQUEST_INTERVALS,
      maxEnvelopeBytes: DEFAULT_MAX_ENVELOPE_BYTES,
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
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  /** Checks its contracts on chain, opens its tables, resumes unfinished requests, binds. */
  async start(): Promise<string> {
    if (this.#running) return this.endpoint;
    const runner = this.#o.signer;
    const dso = await runner.getAddress();
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
    }
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
          this.#handle(identity, rest[0] as Uint8Array);
        } catch (e) {
          this.#o.onError?.(e);
          this.#refuse(identity, null, "INTERNAL_ERROR", "the desk failed on this message; it is still serving");
        }
      }
    } catch (e) {
      if (this.#running) this.#o.onError?.(e);
    }
  }

  #handle(identity: Uint8Array, frame: Uint8Array): void {
    const nowMs = this.#o.clock.now();
    const opened = openDeskEnvelope(frame, {
      nowMs,
      maxClockSkewMs: this.#o.maxClockSkewMs,
      maxBytes: this.#o.maxEnvelopeBytes,
      resolveKey: (from, keyHex) => this.#o.registry.keyFor(from, keyHex),
    });
    if (!opened.ok) {
      this.#refuse(identity, opened.requestId ?? null, opened.reason, opened.detail);
      return;
    }
    const env = opened.envelope;
    const requestId = "requestId" in env.message ? env.message.requestId : null;
    // Nonce and effect commit together: a crash can never keep one without the other.
    const answer = this.#o.book.transaction((): (() => void) => {
      if (!this.#o.book.acceptNonce(env.keyHex, env.nonceHex, env.timestampMs, nowMs - 2 * this.#o.maxClockSkewMs)) {
        return () =>
          this.#refuse(identity, requestId, "REPLAYED_NONCE", `nonce ${env.nonceHex} already used by "${env.from}"`);
      }
      try {
        return this.#dispatch(identity, env, nowMs);
      } catch (e) {
        if (e instanceof Refusal) return () => this.#refuse(identity, requestId, e.reason, e.message);
        throw e;
      }
    });
    answer();
  }

  /** Runs inside the book's transaction; returns what to send once it committed. */
  #dispatch(identity: Uint8Array, env: DeskEnvelope, nowMs: number): () => void {
    const household = this.#o.registry.household(env.from) as Household;
    const m = env.message;
    switch (m.type) {
      case "allowanceRequest":
        return this.#allowance(identity, household, m, nowMs);
      case "noteDepositRequest":
        return this.#notes(identity, household, m, nowMs);
      case "allowanceIssued":
      case "notesDeposited":
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
    const formError = commitmentFormError(m.commitment);
    if (formError) throw new Refusal("INVALID_COMMITMENT", `commitment ${formError}`);
    const bodyHash = hashOf([m.direction, m.capW, m.windowStart, m.windowEnd, m.commitment]);
    const existing = this.#existing(identity, household.id, m.requestId, bodyHash);
    if (existing) return existing;
    this.#checkFresh(vault, [m.commitment]);
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
    this.#insertCommitments(vault, household.id, m.requestId, [m.commitment]);
    this.#addUsage(household.id, feeder.id, verdict.added, 1);
    return this.#enqueue(identity, household.id, m.requestId);
  }

  #notes(identity: Uint8Array, household: Household, m: NoteDepositRequest, nowMs: number): () => void {
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
    } else {
      this.#send(identity, {
        type: "notesDeposited",
        requestId: row.request_id,
        pool: row.contract,
        denomination: row.denomination ?? "0",
        commitments: cs.map((c) => c.commitment),
        txHashes: cs.map((c) => c.tx_hash ?? ""),
        balance: this.#o.book.balance(row.household_id) ?? 0,
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
      try {
        await this.#settle(item.householdId, item.requestId);
        this.#queue.shift();
        this.#fresh.delete(`${item.householdId}\u0000${item.requestId}`);
        this.#notify(item.householdId, item.requestId);
      } catch (e) {
        // The node did not answer: keep the request and try again.
        this.#o.onError?.(e);
        if (this.#running) await this.#o.clock.sleep(this.#o.retryDelayMs);
      }
    }
  }

  /** Puts every commitment of one request on chain (once), then settles the request in the book. */
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
        const tx =
          row.kind === "allowance"
            ? await AllowanceVault__factory.connect(c.contract, this.#o.signer).issue(BigInt(c.commitment))
            : await Mixer__factory.connect(c.contract, this.#o.signer).deposit(BigInt(c.commitment));
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
        this.#addUsage(row.household_id, row.feeder_id, added, -1);
      }
      db.prepare(
        `UPDATE desk_requests SET status = 'failed', failure_reason = 'CHAIN_FAILED', failure_message = ?, updated_ms = ?
         WHERE household_id = ? AND request_id = ?`,
      ).run(
        `${failed} of ${cs.length} commitment(s) refused on chain (refunded)`,
        nowMs,
        row.household_id,
        row.request_id,
      );
    });
  }

  /** The transaction that inserted `commitment`, if the chain has it (the event's commitment is indexed). */
  async #insertedBy(kind: "allowance" | "notes", contract: string, commitment: string): Promise<string | undefined> {
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
    const provider = this.#o.signer.provider;
    if (!provider) throw new PetraError("INVALID_ARGUMENT", "signer: not connected to a provider");
    for (let polls = 1; ; polls++) {
      const receipt = await provider.getTransactionReceipt(hash);
      if (receipt) return receipt.status === 1;
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

  #addUsage(householdId: string, feederId: string, added: Map<number, IntervalUsage>, sign: 1 | -1): void {
    const upsert = this.#o.book.db.prepare(
      `INSERT INTO usage (scope, scope_id, interval, production_w, consumption_w) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (scope, scope_id, interval) DO UPDATE SET
         production_w = production_w + excluded.production_w, consumption_w = consumption_w + excluded.consumption_w`,
    );
    for (const [t, u] of added) {
      upsert.run("household", householdId, t, sign * u.productionW, sign * u.consumptionW);
      upsert.run("feeder", feederId, t, sign * u.productionW, sign * u.consumptionW);
    }
  }
}

function hashOf(parts: readonly (string | number)[]): string {
  return bytesToHex(sha256(JSON.stringify(parts)));
}
