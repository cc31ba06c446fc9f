import Database from "better-sqlite3";
import { getOrInsert } from "../common/collections";
import { PetraError } from "../common/errors";
import type { IntervalUsage, PolicyVerdict } from "./dso-policy";
import type { HouseholdRegistry } from "./household-registry";
import type { AssetRequest, FailureReason } from "./messages";

/**
 * The DSO's durable memory, in SQLite: household balances, which anonymous address belongs to
 * which household, every accepted request (for idempotency), every mint transaction it signed,
 * the per-interval usage the safety policy counts, the market's assets and deposits as read
 * from chain logs, and the envelope nonces it has seen.
 *
 * Crash safety rests on two rules:
 * 1. A request is reserved (row written, balance debited, usage counted) in one transaction
 *    before anything goes on chain; a re-sent request finds the row and never mints again.
 * 2. Mint transactions are signed with explicit nonces and stored raw, in one transaction, before
 *    they are broadcast. After a crash the DSO looks each stored hash up on chain: mined means
 *    done (asset IDs come from its receipt), unknown means re-broadcast the same bytes. The
 *    account nonce makes a second execution impossible, so nothing is minted twice.
 *
 * better-sqlite3 is synchronous, so each method below runs to completion within one JS turn and
 * the DSO's concurrent message handlers cannot interleave inside a reservation.
 */

export interface AccountBookOptions {
  /** File path, or ":memory:" for unit tests. */
  path: string;
  /** The market this book belongs to; opening a book written for another market fails. */
  marketAddress: string;
  chainId: number;
  /**
   * "FULL" survives power loss; "NORMAL" (WAL) survives a killed process, which is what the
   * experiments need, at a fraction of the fsync cost. Default "FULL".
   */
  synchronous?: "FULL" | "NORMAL";
}

export type RequestStatus = "pending" | "minted" | "failed";

export interface RequestRow {
  householdId: string;
  requestId: string;
  bodyHash: string;
  anonAddress: string;
  assets: AssetRequest[];
  financial: number;
  fundGas: boolean;
  status: RequestStatus;
  batchId: number | null;
  assetIds: string[] | null;
  gasFundedWei: string;
  /** This pending request carries the gas funding of its address. */
  gasClaimed: boolean;
  failureReason: FailureReason | null;
  failureMessage: string | null;
}

export interface NewRequest {
  householdId: string;
  feederId: string;
  requestId: string;
  bodyHash: string;
  anonAddress: string;
  assets: AssetRequest[];
  financial: number;
  fundGas: boolean;
}

export interface UsageSnapshot {
  balance: number;
  householdUsage: Map<number, IntervalUsage>;
  feederUsage: Map<number, IntervalUsage>;
}

export type ReserveResult =
  | { kind: "reserved"; balance: number; needsGas: boolean }
  | { kind: "existing"; row: RequestRow }
  | { kind: "refused"; reason: FailureReason; message: string };

export type TxKind = "energy" | "financial" | "gas";

export interface SignedTx {
  hash: string;
  kind: TxKind;
  nonce: number;
  raw: string;
  /** Gas funding (one fundGas call): the funded addresses, lower case. */
  targets?: string[];
  /** Gas funding: wei sent to each target. */
  valueWei?: string;
}

export interface BatchMember {
  householdId: string;
  requestId: string;
  /** Index of this request's first asset among the energy tx's AssetAdded logs. */
  assetOffset: number;
}

export interface StoredBatch {
  id: number;
  txs: (SignedTx & { status: string })[];
  members: BatchMember[];
}

/** A market log the book cares about, already decoded. */
export type BookEvent =
  | {
      name: "AssetAdded";
      blockNumber: number;
      logIndex: number;
      owner: string;
      assetId: string;
      powerW: string;
      start: string;
      end: string;
    }
  | {
      name: "AssetSplit";
      blockNumber: number;
      logIndex: number;
      parentId: string;
      assetId: string;
      owner: string;
      powerW: string;
      start: string;
      end: string;
    }
  | { name: "AssetDeposited"; blockNumber: number; logIndex: number; owner: string; assetId: string }
  | { name: "FinancialDeposited"; blockNumber: number; logIndex: number; owner: string; amount: string };

export interface EnergyDeposit {
  assetId: string;
  anonAddress: string;
  powerW: string;
  start: string;
  end: string;
  blockNumber: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS households (id TEXT PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS anon_addresses (
  address TEXT PRIMARY KEY, household_id TEXT NOT NULL,
  gas_funded_wei TEXT NOT NULL DEFAULT '0', gas_pending INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS anon_by_household ON anon_addresses(household_id);
CREATE TABLE IF NOT EXISTS requests (
  household_id TEXT NOT NULL, request_id TEXT NOT NULL, body_hash TEXT NOT NULL,
  anon_address TEXT NOT NULL, assets_json TEXT NOT NULL, financial INTEGER NOT NULL, fund_gas INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'minted', 'failed')),
  batch_id INTEGER, asset_ids_json TEXT, gas_funded_wei TEXT NOT NULL DEFAULT '0',
  failure_reason TEXT, failure_message TEXT, usage_json TEXT NOT NULL, feeder_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  PRIMARY KEY (household_id, request_id));
CREATE INDEX IF NOT EXISTS requests_open ON requests(status, batch_id);
CREATE TABLE IF NOT EXISTS usage (
  scope TEXT NOT NULL, scope_id TEXT NOT NULL, interval INTEGER NOT NULL,
  production_w INTEGER NOT NULL, consumption_w INTEGER NOT NULL,
  PRIMARY KEY (scope, scope_id, interval));
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL CHECK (status IN ('signed', 'mined', 'failed', 'dropped')),
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
  hash TEXT PRIMARY KEY, batch_id INTEGER NOT NULL, kind TEXT NOT NULL, nonce INTEGER NOT NULL, raw TEXT NOT NULL,
  targets TEXT, value_wei TEXT, status TEXT NOT NULL, block_number INTEGER);
CREATE TABLE IF NOT EXISTS batch_members (
  batch_id INTEGER NOT NULL, household_id TEXT NOT NULL, request_id TEXT NOT NULL, asset_offset INTEGER NOT NULL,
  PRIMARY KEY (batch_id, household_id, request_id));
CREATE TABLE IF NOT EXISTS assets (
  asset_id TEXT PRIMARY KEY, owner TEXT NOT NULL, power_w TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT NOT NULL,
  status TEXT NOT NULL, parent_id TEXT);
CREATE TABLE IF NOT EXISTS deposits (
  block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, kind TEXT NOT NULL, anon_address TEXT NOT NULL,
  household_id TEXT, asset_id TEXT, amount INTEGER,
  PRIMARY KEY (block_number, log_index));
CREATE TABLE IF NOT EXISTS nonces (key_hex TEXT NOT NULL, nonce TEXT NOT NULL, timestamp_ms INTEGER NOT NULL, PRIMARY KEY (key_hex, nonce));
CREATE INDEX IF NOT EXISTS nonces_by_time ON nonces(timestamp_ms);
`;

interface RawRequestRow {
  household_id: string;
  request_id: string;
  body_hash: string;
  anon_address: string;
  assets_json: string;
  financial: number;
  fund_gas: number;
  status: RequestStatus;
  batch_id: number | null;
  asset_ids_json: string | null;
  gas_funded_wei: string;
  failure_reason: FailureReason | null;
  failure_message: string | null;
  usage_json: string;
  feeder_id: string;
}

export class AccountBook {
  readonly db: Database.Database;
  /** Prepared statements by text: preparing one costs more than running it, and the DSO runs a few per request. */
  readonly #statements = new Map<string, Database.Statement>();

  constructor(opts: AccountBookOptions) {
    this.db = new Database(opts.path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${opts.synchronous ?? "FULL"}`);
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    const market = opts.marketAddress.toLowerCase();
    const chainId = String(opts.chainId);
    const stored = this.getMeta("market");
    const storedChain = this.getMeta("chainId");
    if (stored === undefined) {
      this.setMeta("market", market);
      this.setMeta("chainId", chainId);
    } else if (stored !== market || storedChain !== chainId) {
      this.db.close();
      throw new PetraError(
        "ACCOUNT_BOOK_MISMATCH",
        `account book ${opts.path} belongs to market ${stored} on chain ${storedChain}, not ${market} on chain ${chainId}`,
        { path: opts.path, stored, storedChain, market, chainId },
      );
    }
  }

  /** db.prepare, once per statement text. */
  sql(text: string): Database.Statement {
    let st = this.#statements.get(text);
    if (st === undefined) {
      st = this.db.prepare(text);
      this.#statements.set(text, st);
    }
    return st;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Opens an account for every registered household that has none, with its initial balance. */
  ensureHouseholds(registry: HouseholdRegistry): void {
    const insert = this.sql("INSERT OR IGNORE INTO households (id, balance) VALUES (?, ?)");
    this.db.transaction(() => {
      for (const h of registry.allHouseholds()) insert.run(h.id, h.initialBalance);
    })();
  }

  balance(householdId: string): number | undefined {
    const row = this.sql("SELECT balance FROM households WHERE id = ?").get(householdId) as
      | { balance: number }
      | undefined;
    return row?.balance;
  }

  anonAddresses(householdId: string): string[] {
    return (
      this.sql("SELECT address FROM anon_addresses WHERE household_id = ? ORDER BY created_ms, address").all(
        householdId,
      ) as {
        address: string;
      }[]
    ).map((r) => r.address);
  }

  householdOf(anonAddress: string): string | undefined {
    const row = this.sql("SELECT household_id FROM anon_addresses WHERE address = ?").get(anonAddress.toLowerCase()) as
      | { household_id: string }
      | undefined;
    return row?.household_id;
  }

  request(householdId: string, requestId: string): RequestRow | undefined {
    const row = this.sql("SELECT * FROM requests WHERE household_id = ? AND request_id = ?").get(
      householdId,
      requestId,
    ) as RawRequestRow | undefined;
    return row && toRequestRow(row);
  }

  /** Requests reserved but not yet in a signed batch: the minter's queue after a restart. */
  unbatchedRequests(): RequestRow[] {
    return (
      this.sql(
        "SELECT * FROM requests WHERE status = 'pending' AND batch_id IS NULL ORDER BY created_ms, rowid",
      ).all() as RawRequestRow[]
    ).map(toRequestRow);
  }

  countRequests(status: RequestStatus): number {
    return (this.sql("SELECT count(*) AS n FROM requests WHERE status = ?").get(status) as { n: number }).n;
  }

  /** Runs `fn` in one SQLite transaction (a savepoint when nested): all of its writes commit together or not at all. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Records the nonce unless seen; forgets nonces older than `forgetBeforeMs` (they would be
   * refused as stale anyway). Returns false for a replay.
   */
  acceptNonce(keyHex: string, nonceHex: string, timestampMs: number, forgetBeforeMs: number): boolean {
    const info = this.sql("INSERT OR IGNORE INTO nonces (key_hex, nonce, timestamp_ms) VALUES (?, ?, ?)").run(
      keyHex,
      nonceHex,
      timestampMs,
    );
    if (info.changes === 0) return false;
    // Pruning is cheap with the index; do it now and then rather than on every message.
    if ((info.lastInsertRowid as number) % 256 === 0) {
      this.sql("DELETE FROM nonces WHERE timestamp_ms < ?").run(forgetBeforeMs);
    }
    return true;
  }

  /**
   * The atomic step of a withdrawal: look the request up (idempotency), check the anonymous
   * address belongs to nobody else, run the policy on a consistent snapshot, then write the
   * request, debit the balance, count the usage and bind the address, all or nothing.
   */
  reserve(req: NewRequest, nowMs: number, decide: (snapshot: UsageSnapshot) => PolicyVerdict): ReserveResult {
    const address = req.anonAddress.toLowerCase();
    return this.db.transaction((): ReserveResult => {
      const existing = this.request(req.householdId, req.requestId);
      if (existing) return { kind: "existing", row: existing };
      const owner = this.householdOf(address);
      if (owner !== undefined && owner !== req.householdId) {
        return {
          kind: "refused",
          reason: "ADDRESS_TAKEN",
          message: `anonymous address ${req.anonAddress} belongs to another household`,
        };
      }
      const balance = this.balance(req.householdId);
      if (balance === undefined) {
        return { kind: "refused", reason: "INTERNAL_ERROR", message: `no account for household "${req.householdId}"` };
      }
      const intervals = new Set<number>();
      for (const a of req.assets) {
        // Bounded by the policy's interval cap, which the caller checks before reserving.
        for (let t = a.start; t <= a.end; t++) intervals.add(t);
      }
      const snapshot: UsageSnapshot = {
        balance,
        householdUsage: this.readUsage("household", req.householdId, intervals),
        feederUsage: this.readUsage("feeder", req.feederId, intervals),
      };
      const verdict = decide(snapshot);
      if (!verdict.ok) return { kind: "refused", reason: verdict.reason, message: verdict.message };
      let needsGas = false;
      if (owner === undefined) {
        this.sql("INSERT INTO anon_addresses (address, household_id, created_ms) VALUES (?, ?, ?)").run(
          address,
          req.householdId,
          nowMs,
        );
      }
      if (req.fundGas) {
        const a = this.sql("SELECT gas_funded_wei, gas_pending FROM anon_addresses WHERE address = ?").get(address) as {
          gas_funded_wei: string;
          gas_pending: number;
        };
        // Claimed in the same transaction, so a second request for the address never funds it twice.
        needsGas = a.gas_funded_wei === "0" && a.gas_pending === 0;
        if (needsGas) this.sql("UPDATE anon_addresses SET gas_pending = 1 WHERE address = ?").run(address);
      }
      this.sql(
        `INSERT INTO requests (household_id, request_id, body_hash, anon_address, assets_json, financial, fund_gas, status,
             gas_funded_wei, usage_json, feeder_id, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
      ).run(
        req.householdId,
        req.requestId,
        req.bodyHash,
        address,
        JSON.stringify(req.assets),
        req.financial,
        req.fundGas ? 1 : 0,
        needsGas ? "claimed" : "0",
        JSON.stringify([...verdict.added.entries()]),
        req.feederId,
        nowMs,
        nowMs,
      );
      this.sql("UPDATE households SET balance = balance - ? WHERE id = ?").run(req.financial, req.householdId);
      this.addUsage(req.householdId, req.feederId, verdict.added, 1);
      return { kind: "reserved", balance: balance - req.financial, needsGas };
    })();
  }

  /** Does this pending request own the gas funding claim of its address? */
  requestClaimsGas(householdId: string, requestId: string): boolean {
    const row = this.sql("SELECT gas_funded_wei FROM requests WHERE household_id = ? AND request_id = ?").get(
      householdId,
      requestId,
    ) as { gas_funded_wei: string } | undefined;
    return row?.gas_funded_wei === "claimed";
  }

  /** Stores signed transactions and batch membership, before any of them is broadcast. */
  recordBatch(txs: SignedTx[], members: BatchMember[], nowMs: number): number {
    return this.db.transaction(() => {
      const info = this.sql("INSERT INTO batches (status, created_ms) VALUES ('signed', ?)").run(nowMs);
      const batchId = Number(info.lastInsertRowid);
      const insTx = this.sql(
        "INSERT INTO txs (hash, batch_id, kind, nonce, raw, targets, value_wei, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'signed')",
      );
      for (const t of txs)
        insTx.run(t.hash, batchId, t.kind, t.nonce, t.raw, t.targets?.join(",") ?? null, t.valueWei ?? null);
      const insMember = this.sql(
        "INSERT INTO batch_members (batch_id, household_id, request_id, asset_offset) VALUES (?, ?, ?, ?)",
      );
      const setBatch = this.sql(
        "UPDATE requests SET batch_id = ?, updated_ms = ? WHERE household_id = ? AND request_id = ?",
      );
      for (const m of members) {
        insMember.run(batchId, m.householdId, m.requestId, m.assetOffset);
        setBatch.run(batchId, nowMs, m.householdId, m.requestId);
      }
      return batchId;
    })();
  }

  /** Batches signed but not yet settled: what a restarted DSO must reconcile with the chain. */
  openBatches(): StoredBatch[] {
    const batches = this.sql("SELECT id FROM batches WHERE status = 'signed' ORDER BY id").all() as {
      id: number;
    }[];
    return batches.map((b) => this.batch(b.id));
  }

  batch(id: number): StoredBatch {
    const txs = (
      this.sql(
        "SELECT hash, kind, nonce, raw, targets, value_wei, status FROM txs WHERE batch_id = ? ORDER BY nonce",
      ).all(id) as {
        hash: string;
        kind: TxKind;
        nonce: number;
        raw: string;
        targets: string | null;
        value_wei: string | null;
        status: string;
      }[]
    ).map((t) => ({
      hash: t.hash,
      kind: t.kind,
      nonce: t.nonce,
      raw: t.raw,
      status: t.status,
      ...(t.targets !== null ? { targets: t.targets.split(",") } : {}),
      ...(t.value_wei !== null ? { valueWei: t.value_wei } : {}),
    }));
    const members = (
      this.sql(
        "SELECT household_id, request_id, asset_offset FROM batch_members WHERE batch_id = ? ORDER BY asset_offset, rowid",
      ).all(id) as { household_id: string; request_id: string; asset_offset: number }[]
    ).map((m) => ({ householdId: m.household_id, requestId: m.request_id, assetOffset: m.asset_offset }));
    return { id, txs, members };
  }

  /** Highest nonce this book ever signed with, or -1. */
  maxSignedNonce(): number {
    const row = this.sql("SELECT max(nonce) AS n FROM txs WHERE status <> 'dropped'").get() as {
      n: number | null;
    };
    return row.n ?? -1;
  }

  /**
   * Settles a batch whose transactions all succeeded: each member gets its slice of the minted
   * asset IDs (in AssetAdded log order), gas funding is recorded, and the assets are remembered.
   */
  completeBatch(
    batchId: number,
    result: { energyAssetIds: string[]; blocks: Map<string, number> },
    nowMs: number,
  ): void {
    this.db.transaction(() => {
      const b = this.batch(batchId);
      for (const t of b.txs)
        this.sql("UPDATE txs SET status = 'mined', block_number = ? WHERE hash = ?").run(
          result.blocks.get(t.hash) ?? null,
          t.hash,
        );
      const gasByAddress = new Map<string, string>();
      for (const t of b.txs)
        if (t.kind === "gas") for (const a of t.targets ?? []) gasByAddress.set(a.toLowerCase(), t.valueWei ?? "0");
      for (const m of b.members) {
        const row = this.request(m.householdId, m.requestId);
        if (row?.status !== "pending") continue;
        const ids = result.energyAssetIds.slice(m.assetOffset, m.assetOffset + row.assets.length);
        if (ids.length !== row.assets.length) {
          throw new PetraError(
            "ACCOUNT_BOOK_MISMATCH",
            `batch ${batchId}: receipt has too few AssetAdded logs for ${m.requestId}`,
            {
              batchId,
              requestId: m.requestId,
            },
          );
        }
        const claimed = this.requestClaimsGas(m.householdId, m.requestId);
        const gasWei = claimed ? (gasByAddress.get(row.anonAddress) ?? "0") : "0";
        this.sql(
          "UPDATE requests SET status = 'minted', asset_ids_json = ?, gas_funded_wei = ?, updated_ms = ? WHERE household_id = ? AND request_id = ?",
        ).run(JSON.stringify(ids), gasWei, nowMs, m.householdId, m.requestId);
        if (claimed) {
          this.sql("UPDATE anon_addresses SET gas_funded_wei = ?, gas_pending = 0 WHERE address = ?").run(
            gasWei,
            row.anonAddress,
          );
        }
        for (const [i, id] of ids.entries()) {
          const a = row.assets[i] as AssetRequest;
          this.sql(
            `INSERT OR IGNORE INTO assets (asset_id, owner, power_w, start, "end", status) VALUES (?, ?, ?, ?, ?, 'live')`,
          ).run(id, row.anonAddress, String(a.powerW), String(a.start), String(a.end));
        }
      }
      this.sql("UPDATE batches SET status = 'mined' WHERE id = ?").run(batchId);
    })();
  }

  /** A batch that reverted: its requests fail, money and usage return to the households. */
  failBatch(batchId: number, reason: FailureReason, message: string, nowMs: number): void {
    this.db.transaction(() => {
      const b = this.batch(batchId);
      this.sql("UPDATE txs SET status = 'reverted' WHERE batch_id = ?").run(batchId);
      for (const m of b.members) this.failRequest(m.householdId, m.requestId, reason, message, nowMs);
      this.sql("UPDATE batches SET status = 'failed' WHERE id = ?").run(batchId);
    })();
  }

  /** A batch none of whose transactions reached the chain: its requests go back to the queue. */
  dropBatch(batchId: number, nowMs: number): void {
    this.db.transaction(() => {
      this.sql("UPDATE txs SET status = 'dropped' WHERE batch_id = ?").run(batchId);
      this.sql("UPDATE requests SET batch_id = NULL, updated_ms = ? WHERE batch_id = ? AND status = 'pending'").run(
        nowMs,
        batchId,
      );
      this.sql("UPDATE batches SET status = 'dropped' WHERE id = ?").run(batchId);
    })();
  }

  /** Refunds money and usage of a pending request and marks it failed. */
  failRequest(householdId: string, requestId: string, reason: FailureReason, message: string, nowMs: number): void {
    this.db.transaction(() => {
      const raw = this.sql("SELECT * FROM requests WHERE household_id = ? AND request_id = ?").get(
        householdId,
        requestId,
      ) as RawRequestRow | undefined;
      if (raw?.status !== "pending") return;
      this.sql("UPDATE households SET balance = balance + ? WHERE id = ?").run(raw.financial, householdId);
      const added = new Map<number, IntervalUsage>(JSON.parse(raw.usage_json) as [number, IntervalUsage][]);
      this.addUsage(householdId, raw.feeder_id, added, -1);
      if (raw.gas_funded_wei === "claimed") {
        this.sql("UPDATE anon_addresses SET gas_pending = 0 WHERE address = ?").run(raw.anon_address);
      }
      this.sql(
        "UPDATE requests SET status = 'failed', failure_reason = ?, failure_message = ?, gas_funded_wei = '0', updated_ms = ? WHERE household_id = ? AND request_id = ?",
      ).run(reason, message, nowMs, householdId, requestId);
    })();
  }

  /** Block from which the log watcher resumes. */
  logCursor(): number | undefined {
    const v = this.getMeta("logCursor");
    return v === undefined ? undefined : Number(v);
  }

  /**
   * Applies market logs up to and including `toBlock`, and moves the cursor there, atomically.
   * Deposits are keyed by (block, logIndex), so a range read twice credits nothing twice.
   */
  applyEvents(events: BookEvent[], toBlock: number): { creditedMoney: number } {
    return this.db.transaction(() => {
      let creditedMoney = 0;
      for (const e of events) {
        switch (e.name) {
          case "AssetAdded":
            this.sql(
              `INSERT OR IGNORE INTO assets (asset_id, owner, power_w, start, "end", status) VALUES (?, ?, ?, ?, ?, 'live')`,
            ).run(e.assetId, e.owner.toLowerCase(), e.powerW, e.start, e.end);
            break;
          case "AssetSplit":
            // A trade retires the parent and creates parts owned by (possibly other) anonymous addresses.
            this.sql("UPDATE assets SET status = 'retired' WHERE asset_id = ?").run(e.parentId);
            this.sql(
              `INSERT OR IGNORE INTO assets (asset_id, owner, power_w, start, "end", status, parent_id) VALUES (?, ?, ?, ?, ?, 'live', ?)`,
            ).run(e.assetId, e.owner.toLowerCase(), e.powerW, e.start, e.end, e.parentId);
            break;
          case "AssetDeposited": {
            const owner = e.owner.toLowerCase();
            const info = this.sql(
              "INSERT OR IGNORE INTO deposits (block_number, log_index, kind, anon_address, household_id, asset_id) VALUES (?, ?, 'energy', ?, ?, ?)",
            ).run(e.blockNumber, e.logIndex, owner, this.householdOf(owner) ?? null, e.assetId);
            if (info.changes > 0) this.sql("UPDATE assets SET status = 'deposited' WHERE asset_id = ?").run(e.assetId);
            break;
          }
          case "FinancialDeposited": {
            const owner = e.owner.toLowerCase();
            const household = this.householdOf(owner);
            const amount = Number(e.amount);
            const info = this.sql(
              "INSERT OR IGNORE INTO deposits (block_number, log_index, kind, anon_address, household_id, amount) VALUES (?, ?, 'financial', ?, ?, ?)",
            ).run(e.blockNumber, e.logIndex, owner, household ?? null, amount);
            // Money from an address the DSO never gave out stays recorded but unattributed.
            if (info.changes > 0 && household !== undefined) {
              this.sql("UPDATE households SET balance = balance + ? WHERE id = ?").run(amount, household);
              creditedMoney += amount;
            }
            break;
          }
          default: {
            const never: never = e;
            throw new PetraError("INVALID_ARGUMENT", `event: unknown ${(never as { name: string }).name}`);
          }
        }
      }
      this.setMeta("logCursor", String(toBlock + 1));
      return { creditedMoney };
    })();
  }

  /** Energy assets a household handed back through its anonymous addresses. */
  energyDeposits(householdId: string): EnergyDeposit[] {
    return (
      this.sql(
        `SELECT d.asset_id, d.anon_address, d.block_number, a.power_w, a.start, a."end" FROM deposits d
           LEFT JOIN assets a ON a.asset_id = d.asset_id WHERE d.kind = 'energy' AND d.household_id = ? ORDER BY d.block_number, d.log_index`,
      ).all(householdId) as {
        asset_id: string;
        anon_address: string;
        block_number: number;
        power_w: string;
        start: string;
        end: string;
      }[]
    ).map((r) => ({
      assetId: r.asset_id,
      anonAddress: r.anon_address,
      powerW: r.power_w,
      start: r.start,
      end: r.end,
      blockNumber: r.block_number,
    }));
  }

  /** Current owner of an asset as the logs tell it (lower-case), and its status. */
  asset(assetId: string): { owner: string; status: string } | undefined {
    return this.sql("SELECT owner, status FROM assets WHERE asset_id = ?").get(assetId) as
      | { owner: string; status: string }
      | undefined;
  }

  private readUsage(scope: "household" | "feeder", id: string, intervals: Set<number>): Map<number, IntervalUsage> {
    const out = new Map<number, IntervalUsage>();
    const q = this.sql(
      "SELECT production_w, consumption_w FROM usage WHERE scope = ? AND scope_id = ? AND interval = ?",
    );
    for (const t of intervals) {
      const row = q.get(scope, id, t) as { production_w: number; consumption_w: number } | undefined;
      if (row) out.set(t, { productionW: row.production_w, consumptionW: row.consumption_w });
    }
    return out;
  }

  /**
   * Adds (sign 1) or takes back (sign -1) per-interval usage for a household and its feeder. Public
   * for the allowance desk, which counts an issued allowance against the same limits as a mint.
   */
  addUsage(householdId: string, feederId: string, added: Map<number, IntervalUsage>, sign: 1 | -1): void {
    const upsert = this.sql(
      `INSERT INTO usage (scope, scope_id, interval, production_w, consumption_w) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (scope, scope_id, interval) DO UPDATE SET
         production_w = production_w + excluded.production_w, consumption_w = consumption_w + excluded.consumption_w`,
    );
    for (const [t, u] of added) {
      upsert.run("household", householdId, t, sign * u.productionW, sign * u.consumptionW);
      upsert.run("feeder", feederId, t, sign * u.productionW, sign * u.consumptionW);
    }
  }

  private getMeta(key: string): string | undefined {
    const row = this.sql("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }

  private setMeta(key: string, value: string): void {
    this.sql("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
      key,
      value,
    );
  }
}

function toRequestRow(r: RawRequestRow): RequestRow {
  return {
    householdId: r.household_id,
    requestId: r.request_id,
    bodyHash: r.body_hash,
    anonAddress: r.anon_address,
    assets: JSON.parse(r.assets_json) as AssetRequest[],
    financial: r.financial,
    fundGas: r.fund_gas === 1,
    status: r.status,
    batchId: r.batch_id,
    assetIds: r.asset_ids_json === null ? null : (JSON.parse(r.asset_ids_json) as string[]),
    gasFundedWei: r.gas_funded_wei === "claimed" ? "0" : r.gas_funded_wei,
    gasClaimed: r.gas_funded_wei === "claimed",
    failureReason: r.failure_reason,
    failureMessage: r.failure_message,
  };
}

/**
 * The DSO's own view of who is behind which anonymous address (household id -> addresses), read
 * from its account book without opening it for writing. In plain PETra the DSO knows every link;
 * the attack suite's dso-view heuristic takes this file as the upper bound the others are held to.
 */
export function exportDsoView(dbPath: string): Record<string, string[]> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT household_id, address FROM anon_addresses ORDER BY household_id, created_ms, address")
      .all() as Array<{ household_id: string; address: string }>;
    const view = new Map<string, string[]>();
    for (const r of rows) getOrInsert(view, r.household_id, () => []).push(r.address);
    return Object.fromEntries(view);
  } finally {
    db.close();
  }
}
