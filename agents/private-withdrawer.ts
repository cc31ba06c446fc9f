import type * as http from "node:http";
import { bytesToHex } from "@noble/hashes/utils";
import { getAddress, type Provider, type Signer } from "ethers";
import { z } from "zod";
import { check, PetraError } from "../common/errors";
import {
  type Allowance,
  allowanceCommitment,
  allowanceInner,
  allowanceNullifierHash,
  freshSecret,
  splitAllowance,
} from "../mixer/allowance";
import type { MerkleTree } from "../mixer/merkle-tree";
import { createNote, noteCommitment, noteNullifierHash } from "../mixer/note";
import { buildPoseidon, type Poseidon } from "../mixer/poseidon";
import { Prover, toSolidityProof } from "../mixer/prover";
import { proveAllowanceWithdrawal, proveMixerWithdrawal, RelayerClient } from "../mixer/relayer-client";
import type { AllowanceWithdrawalWire, MixerWithdrawalWire, RelayerStatus } from "../mixer/relayer-protocol";
import { syncAllowanceTree, syncMixerTree } from "../mixer/tree-sync";
import { AllowanceVault__factory, EnergyMarket__factory, Mixer__factory } from "../typechain-types";
import { AllowanceDeskClient } from "./allowance-desk-client";
import { type DeskRefused, type Direction, depositBackKeyText } from "./allowance-messages";
import { publicKeyHex, type SigningKey, signingKeyFromHex } from "./envelope";
import type { Clock, Transport } from "./interfaces";
import { PrivateStore, type StoredAllowance, type StoredNote } from "./private-store";
import type { AssetWithdrawer, WithdrawOutcome, WithdrawRequest } from "./prosumer";

/**
 * The prosumer's AssetWithdrawer without the DSO ever learning its pseudonyms.
 *
 * Before trading (prepare) the household asks the DSO's allowance desk, under its own signed
 * identity, for an allowance per direction it will need (cap = its limit, window = the run) and
 * for enough mixer notes to pay for the money it will withdraw; it keeps their secrets in a small
 * local store (agents/private-store.ts). Each withdrawal then
 * - proves an allowance spend for each energy asset (the vault mints it to the fresh pseudonym
 *   and inserts what is left of the allowance as new commitments), and
 * - proves mixer withdrawals for the money, to the same pseudonym,
 * and hands them to the relayer (mixer/relayer.ts), which submits them from its own account and
 * pays the gas. The relayer's fee comes out of the first mixer withdrawal, which covers the
 * allowance spend it carries and, for a pseudonym seen for the first time with `fundGas`, the
 * relayer's gas drop, so the pseudonym's first ether comes from the relayer, which funds everyone.
 * A producer, who needs no money, spends a note of the smallest denomination on the fee and keeps
 * the change.
 *
 * Withdrawals run one at a time: the allowance left by one spend is the one the next spends.
 */
export interface PrivateWithdrawerOptions {
  householdId: string;
  clock: Clock;
  /** Reads (trees, nullifiers) through the household's own transport. */
  provider: Provider;
  desk: Pick<AllowanceDeskClient, "requestAllowance" | "depositNotes" | "redeemNote">;
  /**
   * A desk client speaking as a pseudonym (its address as `from`, a one-off key), over the
   * pseudonym's own transport: for deposit-backs. Without it, depositBack() is refused.
   */
  pseudonymDesk?: (o: { address: string; key: SigningKey }) => Pick<AllowanceDeskClient, "depositBack" | "close">;
  relayer: Pick<RelayerClient, "status" | "relay">;
  prover: Prover;
  store: PrivateStore;
  chainId: bigint;
  vaults: Partial<Record<Direction, string>>;
  /** Pool address by denomination. */
  pools: ReadonlyMap<bigint, string>;
  /** First block of the zk contracts: tree sync reads their events from there. */
  fromBlock: number;
  /** Key material for secrets and notes. Default: the OS CSPRNG. */
  randomBytes?: (n: number) => Uint8Array;
  log?: (line: string) => void;
}

/** What the household expects to withdraw during the run: enough to size its allowances and notes. */
export interface WithdrawalPlan {
  windowStart: number;
  windowEnd: number;
  /** Cap per direction, W (the household's limit); a direction without one gets no allowance. */
  capsW: Partial<Record<Direction, number>>;
  /** Each planned withdrawal: the money it asks for, its number of assets, and whether it wants a gas drop. */
  withdrawals: { financial: number; assets: number; gasDrop: boolean }[];
}

export interface PaymentFees {
  mixer: bigint;
  allowance: bigint;
  gasDrop: bigint;
}

/**
 * The notes that pay `financial` to the recipient plus the relayer's fees (one mixer fee per note,
 * one allowance fee per asset, each asset riding on a note of its own, and the gas drop once) at
 * the least cost, counting each note as `moneyPerProof` money units (a proof costs the household
 * about a second of CPU and the relayer a withdrawal's gas) plus the money paid beyond what is
 * needed (change the pseudonym keeps). `moneyPerProof` defaults to the smallest denomination.
 * `available` bounds the count per denomination (omitted: unlimited). Undefined when nothing pays.
 */
export function coverWithNotes(o: {
  financial: bigint;
  assets: number;
  gasDrop: boolean;
  fees: PaymentFees;
  denominations: readonly bigint[];
  available?: ReadonlyMap<bigint, number>;
  moneyPerProof?: bigint;
}): bigint[] | undefined {
  const fixed = BigInt(o.assets) * o.fees.allowance + (o.gasDrop ? o.fees.gasDrop : 0n);
  const minCount = Math.max(o.assets, o.gasDrop ? 1 : 0, o.financial > 0n ? 1 : 0);
  if (minCount === 0) return [];
  const denoms = [...o.denominations].filter((d) => d > o.fees.mixer).sort((a, b) => (a > b ? -1 : 1));
  if (denoms.length === 0) return undefined;
  const perProof = o.moneyPerProof ?? (denoms[denoms.length - 1] as bigint);
  const need = o.financial + fixed;
  let best: { notes: bigint[]; cost: bigint } | undefined;
  const walk = (i: number, chosen: bigint[], sum: bigint): void => {
    const count = BigInt(chosen.length);
    if (best && count * perProof > best.cost) return;
    const required = need + count * o.fees.mixer;
    if (chosen.length >= minCount && sum >= required) {
      const cost = count * perProof + (sum - required);
      if (!best || cost < best.cost) best = { notes: [...chosen], cost };
      return;
    }
    if (i >= denoms.length) return;
    const d = denoms[i] as bigint;
    const enough = Number((need + d - o.fees.mixer - 1n) / (d - o.fees.mixer)) + minCount;
    const held = o.available ? (o.available.get(d) ?? 0) : Number.POSITIVE_INFINITY;
    for (let n = Math.min(held, enough, 500); n >= 0; n--) {
      walk(i + 1, [...chosen, ...Array<bigint>(n).fill(d)], sum + BigInt(n) * d);
    }
  };
  walk(0, [], 0n);
  return best?.notes;
}

/** What a pseudonym's deposit-back did: notes the household now holds, and the change left on the pseudonym. */
export interface DepositBackOutcome {
  pseudonym: string;
  /** Money moved into notes. */
  amount: bigint;
  notes: number;
  /** Below the smallest denomination: stays on the pseudonym. */
  change: bigint;
  /** Desk refusals, "reason: message" (the deposit is on chain; its notes stay "requested"). */
  refused: string[];
  /** Block of the last depositFinancial it mined; undefined when it deposited nothing. */
  lastDepositBlock?: number;
}

/** What redeeming the household's notes at the desk did. */
export interface RedemptionOutcome {
  redeemed: number;
  amount: bigint;
  /** Account balance after the last credit, as the desk reported it. */
  balance: number | undefined;
  refused: string[];
}

/** Where a successful withdrawal's time went, ms on the withdrawer's clock. */
export interface WithdrawalTiming {
  treesMs: number;
  proofsMs: number;
  relayMs: number;
  proofs: number;
}

export class PrivateWithdrawer implements AssetWithdrawer {
  readonly #o: PrivateWithdrawerOptions;
  readonly #store: PrivateStore;
  #poseidon: Poseidon | undefined;
  #relayer: RelayerStatus | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #timings: WithdrawalTiming[] = [];

  constructor(opts: PrivateWithdrawerOptions) {
    check(Number.isInteger(opts.fromBlock) && opts.fromBlock >= 0, "fromBlock", "must be a block number");
    check(opts.pools.size + Object.keys(opts.vaults).length > 0, "pools", "need at least one pool or vault");
    this.#o = opts;
    this.#store = opts.store;
  }

  get fees(): PaymentFees {
    const f = this.#status().fees;
    return { mixer: BigInt(f.mixer), allowance: BigInt(f.allowance), gasDrop: BigInt(f.gasDrop) };
  }

  #status(): RelayerStatus {
    if (!this.#relayer) throw new PetraError("INVALID_ARGUMENT", "withdrawer: call prepare() first");
    return this.#relayer;
  }

  /**
   * Learns the relayer's terms, settles anything a crash left half done, warms the prover, and
   * gets from the desk the allowances and notes `plan` needs (those it does not hold already).
   */
  async prepare(plan: WithdrawalPlan): Promise<void> {
    const o = this.#o;
    this.#poseidon = await buildPoseidon();
    const status = await o.relayer.status();
    for (const [d, pool] of o.pools) {
      check(
        status.pools.some((p) => getAddress(p.address) === getAddress(pool) && BigInt(p.denomination) === d),
        "pools",
        `the relayer does not serve pool ${pool} (denomination ${d})`,
      );
    }
    for (const vault of Object.values(o.vaults)) {
      check(
        status.vaults.some((v) => getAddress(v.address) === getAddress(vault as string)),
        "vaults",
        `the relayer does not serve vault ${vault}`,
      );
    }
    this.#relayer = status;
    await this.#reconcile();
    await o.prover.warm("mixer-withdraw");
    if (Object.keys(o.vaults).length > 0) await o.prover.warm("allowance-withdraw");

    for (const [direction, capW] of Object.entries(plan.capsW) as [Direction, number][]) {
      if (!capW || capW <= 0) continue;
      const vault = o.vaults[direction];
      if (!vault) throw new PetraError("INVALID_ARGUMENT", `plan.capsW.${direction}: no ${direction} vault configured`);
      const held = this.#store.allowances.some(
        (a) =>
          a.direction === direction &&
          a.status !== "spent" &&
          a.windowStart <= BigInt(plan.windowStart) &&
          a.windowEnd >= BigInt(plan.windowEnd),
      );
      if (!held) await this.#requestAllowance(direction, vault, capW, plan.windowStart, plan.windowEnd);
    }

    // Notes: what the plan's withdrawals would take, less what is held.
    const denominations = [...o.pools.keys()];
    const wanted = new Map<bigint, number>();
    for (const w of plan.withdrawals) {
      const notes = coverWithNotes({
        financial: BigInt(w.financial),
        assets: w.assets,
        gasDrop: w.gasDrop,
        fees: this.fees,
        denominations,
      });
      if (!notes) throw new PetraError("INVALID_ARGUMENT", `plan: no notes pay for a withdrawal of ${w.financial}`);
      for (const d of notes) wanted.set(d, (wanted.get(d) ?? 0) + 1);
    }
    for (const n of this.#store.notes) {
      if (n.status === "unspent" || (n.status === "requested" && !n.pseudonym)) {
        const d = n.note.denomination;
        if ((wanted.get(d) ?? 0) > 0) wanted.set(d, (wanted.get(d) ?? 0) - 1);
      }
    }
    for (const [denomination, count] of wanted) {
      for (let left = count; left > 0; left -= 64) await this.#depositNotes(denomination, Math.min(64, left));
    }
  }

  withdraw(request: WithdrawRequest): Promise<WithdrawOutcome> {
    const run = () => this.#withdraw(request);
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  // ------------------------------------------------------------------ desk

  async #requestAllowance(
    direction: Direction,
    vault: string,
    capW: number,
    start: number,
    end: number,
  ): Promise<void> {
    const random = this.#o.randomBytes;
    const entry: StoredAllowance = {
      id: this.#store.nextId("a"),
      direction,
      vault: getAddress(vault),
      capW: BigInt(capW),
      windowStart: BigInt(start),
      windowEnd: BigInt(end),
      secret: freshSecret(random),
      nullifier: freshSecret(random),
      status: "requested",
    };
    entry.requestId = `${this.#o.householdId}:allowance:${entry.id}`;
    this.#store.allowances.push(entry);
    this.#store.save();
    await this.#sendAllowanceRequest(entry);
  }

  async #sendAllowanceRequest(entry: StoredAllowance): Promise<void> {
    const r = await this.#o.desk.requestAllowance({
      requestId: entry.requestId as string,
      direction: entry.direction,
      capW: Number(entry.capW),
      windowStart: Number(entry.windowStart),
      windowEnd: Number(entry.windowEnd),
      inner: allowanceInner(this.#p(), entry),
    });
    if (r.type === "deskRefused") {
      this.#store.allowances = this.#store.allowances.filter((a) => a !== entry);
      this.#store.save();
      throw refused(r, `${entry.direction} allowance of ${entry.capW} W`);
    }
    if (BigInt(r.commitment) !== allowanceCommitment(this.#p(), entry)) {
      // The desk hashed another cap or window than asked: the leaf is not this allowance, and a
      // proof spending the stored one would name a leaf that is not in the tree.
      this.#store.allowances = this.#store.allowances.filter((a) => a !== entry);
      this.#store.save();
      throw new PetraError(
        "DSO_REFUSED",
        `allowance desk issued leaf ${r.commitment} for ${entry.direction} ${entry.capW} W over [${entry.windowStart}, ${entry.windowEnd}], not the expected one`,
      );
    }
    entry.status = "unspent";
    this.#store.save();
    this.#o.log?.(
      `allowance ${entry.id}: ${entry.direction} ${entry.capW} W over [${entry.windowStart}, ${entry.windowEnd}]`,
    );
  }

  async #depositNotes(denomination: bigint, count: number): Promise<void> {
    const pool = this.#o.pools.get(denomination) as string;
    const requestId = `${this.#o.householdId}:notes:${this.#store.nextId("n")}`;
    const entries: StoredNote[] = Array.from({ length: count }, () => ({
      note: createNote({
        chainId: this.#o.chainId,
        denomination,
        ...(this.#o.randomBytes ? { randomBytes: this.#o.randomBytes } : {}),
      }),
      pool: getAddress(pool),
      status: "requested",
      requestId,
    }));
    this.#store.notes.push(...entries);
    this.#store.save();
    await this.#sendNoteRequest(requestId, denomination, entries);
  }

  async #sendNoteRequest(requestId: string, denomination: bigint, entries: StoredNote[]): Promise<void> {
    const r = await this.#o.desk.depositNotes({
      requestId,
      denomination,
      commitments: entries.map((e) => noteCommitment(this.#p(), e.note)),
    });
    if (r.type === "deskRefused") {
      this.#store.notes = this.#store.notes.filter((n) => !entries.includes(n));
      this.#store.save();
      throw refused(r, `${entries.length} note(s) of ${denomination}`);
    }
    for (const e of entries) e.status = "unspent";
    this.#store.save();
    this.#o.log?.(`notes: ${entries.length} x ${denomination} deposited; account balance ${r.balance}`);
  }

  /** Settles what a crash left half done: desk requests are re-sent (the desk is idempotent), spends looked up on chain. */
  async #reconcile(): Promise<void> {
    const s = this.#store;
    for (const a of s.allowances.filter((x) => x.status === "spending")) {
      const spent = await AllowanceVault__factory.connect(a.vault, this.#o.provider).nullifierSpent(
        allowanceNullifierHash(this.#p(), a),
      );
      this.#settleAllowance(a, spent);
    }
    for (const n of s.notes.filter((x) => x.status === "spending")) {
      const spent = await Mixer__factory.connect(n.pool, this.#o.provider).nullifierSpent(
        noteNullifierHash(this.#p(), n.note),
      );
      n.status = spent ? "spent" : "unspent";
    }
    s.save();
    for (const a of s.allowances.filter((x) => x.status === "requested")) await this.#sendAllowanceRequest(a);
    const byRequest = new Map<string, StoredNote[]>();
    for (const n of s.notes.filter((x) => x.status === "requested" && x.pseudonym)) {
      // A deposit-back the desk may have finished before the crash: the pool's events say.
      const pool = Mixer__factory.connect(n.pool, this.#o.provider);
      const logs = await pool.queryFilter(pool.filters.Deposit(noteCommitment(this.#p(), n.note)), this.#o.fromBlock);
      if (logs.length > 0) n.status = "unspent";
    }
    s.save();
    for (const n of s.notes.filter((x) => x.status === "requested" && !x.pseudonym)) {
      const list = byRequest.get(n.requestId as string) ?? [];
      list.push(n);
      byRequest.set(n.requestId as string, list);
    }
    for (const [requestId, entries] of byRequest) {
      await this.#sendNoteRequest(requestId, (entries[0] as StoredNote).note.denomination, entries);
    }
  }

  #settleAllowance(a: StoredAllowance, spent: boolean): void {
    a.status = spent ? "spent" : "unspent";
    if (spent) {
      for (const part of this.#store.allowances)
        if (part.parent === a.id && part.status === "pending") part.status = "unspent";
    } else {
      this.#store.allowances = this.#store.allowances.filter((p) => p.parent !== a.id || p.status !== "pending");
    }
  }

  #p(): Poseidon {
    if (!this.#poseidon) throw new PetraError("INVALID_ARGUMENT", "withdrawer: call prepare() first");
    return this.#poseidon;
  }

  // ------------------------------------------------------------------ withdrawals

  async #withdraw(req: WithdrawRequest): Promise<WithdrawOutcome> {
    const o = this.#o;
    const status = this.#status();
    const recipient = getAddress(req.anonAddress);
    const fail = (reason: string, message: string): WithdrawOutcome => {
      o.log?.(`${req.requestId}: ${reason}: ${message}`);
      return { ok: false, reason, message };
    };

    // Energy: one allowance per asset, the tightest that covers it.
    const spends: { allowance: StoredAllowance; asset: { powerW: bigint; start: bigint; end: bigint } }[] = [];
    for (const asset of req.assets) {
      const direction: Direction = asset.powerW > 0 ? "production" : "consumption";
      const need = { powerW: BigInt(Math.abs(asset.powerW)), start: BigInt(asset.start), end: BigInt(asset.end) };
      const candidates = this.#store.allowances
        .filter(
          (a) =>
            a.status === "unspent" &&
            a.direction === direction &&
            !spends.some((s) => s.allowance === a) &&
            a.windowStart <= need.start &&
            a.windowEnd >= need.end &&
            a.capW >= need.powerW,
        )
        .sort((x, y) => Number(x.windowEnd - x.windowStart - (y.windowEnd - y.windowStart)));
      const allowance = candidates[0];
      if (!allowance) {
        return fail(
          "NO_ALLOWANCE",
          `no unspent ${direction} allowance covers ${need.powerW} W over [${need.start}, ${need.end}]`,
        );
      }
      spends.push({ allowance, asset: need });
    }

    // Money and fees: the fewest notes that pay both.
    const gasDrop = req.fundGas && BigInt(status.gasDropWei) > 0n && !this.#store.gasDropped.has(recipient);
    const available = new Map<bigint, number>();
    for (const n of this.#store.notes) {
      if (n.status === "unspent") available.set(n.note.denomination, (available.get(n.note.denomination) ?? 0) + 1);
    }
    const fees = this.fees;
    const cover = coverWithNotes({
      financial: BigInt(req.financial),
      assets: spends.length,
      gasDrop,
      fees,
      denominations: [...o.pools.keys()],
      available,
    });
    if (!cover) {
      return fail(
        "INSUFFICIENT_NOTES",
        `the notes held (${[...available].map(([d, n]) => `${n} x ${d}`).join(", ") || "none"}) do not pay ${req.financial} plus fees`,
      );
    }
    const notes: StoredNote[] = [];
    for (const d of cover) {
      const n = this.#store.notes.find(
        (x) => x.status === "unspent" && x.note.denomination === d && !notes.includes(x),
      );
      notes.push(n as StoredNote);
    }

    // Prove against trees rebuilt from the chain (checked against the contracts' roots), all read
    // at one block: events and root read at "latest" could straddle a new block.
    const p = this.#p();
    const t0 = o.clock.now();
    const vaultTrees = new Map<string, MerkleTree>();
    const poolTrees = new Map<string, MerkleTree>();
    try {
      const at = { fromBlock: o.fromBlock, toBlock: await o.provider.getBlockNumber() };
      for (const s of spends) {
        if (!vaultTrees.has(s.allowance.vault)) {
          vaultTrees.set(
            s.allowance.vault,
            await syncAllowanceTree(AllowanceVault__factory.connect(s.allowance.vault, o.provider), at),
          );
        }
      }
      for (const n of notes) {
        if (!poolTrees.has(n.pool)) {
          poolTrees.set(n.pool, await syncMixerTree(Mixer__factory.connect(n.pool, o.provider), at));
        }
      }
    } catch (e) {
      return fail("RPC_UNAVAILABLE", `cannot read the zk trees: ${(e as Error).message}`);
    }
    const t1 = o.clock.now();
    const allowanceWires: AllowanceWithdrawalWire[] = [];
    const parts: StoredAllowance[] = [];
    for (const s of spends) {
      const split = splitAllowance(s.allowance, s.asset, o.randomBytes);
      allowanceWires.push(
        await proveAllowanceWithdrawal({
          prover: o.prover,
          poseidon: p,
          tree: vaultTrees.get(s.allowance.vault) as MerkleTree,
          allowance: s.allowance,
          parts: split,
          vault: s.allowance.vault,
          request: s.asset,
          recipient,
        }),
      );
      for (const part of split) {
        if (!part) continue;
        parts.push({
          ...(part as Allowance),
          id: this.#store.nextId("a"),
          direction: s.allowance.direction,
          vault: s.allowance.vault,
          status: "pending",
          parent: s.allowance.id,
        });
      }
    }
    const mixerWires: MixerWithdrawalWire[] = [];
    for (const [i, n] of notes.entries()) {
      const fee = fees.mixer + (i < spends.length ? fees.allowance : 0n) + (i === 0 && gasDrop ? fees.gasDrop : 0n);
      mixerWires.push(
        await proveMixerWithdrawal({
          prover: o.prover,
          poseidon: p,
          tree: poolTrees.get(n.pool) as MerkleTree,
          note: n.note,
          pool: n.pool,
          recipient,
          relayer: status.relayer,
          fee,
        }),
      );
    }

    const t2 = o.clock.now();
    // Record the spends (and the parts they leave) before they leave the household.
    for (const s of spends) s.allowance.status = "spending";
    for (const n of notes) n.status = "spending";
    this.#store.allowances.push(...parts);
    this.#store.save();

    const assetIds: string[] = [];
    for (const [i, mixer] of mixerWires.entries()) {
      const spend = spends[i];
      const r = await o.relayer.relay({
        mixer,
        ...(spend ? { allowance: allowanceWires[i] as AllowanceWithdrawalWire } : {}),
        gasDrop: i === 0 && gasDrop,
      });
      const note = notes[i] as StoredNote;
      if (!r.ok) {
        // Nothing of this request went on chain (the relayer checks before it sends) unless it
        // reverted after sending; the chain says which, for this and every later request.
        for (const [j, n] of notes.entries()) {
          if (j < i) continue;
          n.status = (await this.#spentOnChain(n)) ? "spent" : "unspent";
        }
        for (const [j, s] of spends.entries()) {
          if (j < i) continue;
          this.#settleAllowance(
            s.allowance,
            await AllowanceVault__factory.connect(s.allowance.vault, o.provider).nullifierSpent(
              allowanceNullifierHash(p, s.allowance),
            ),
          );
        }
        this.#store.save();
        const delivered =
          assetIds.length > 0 ? ` (${assetIds.length} asset(s) and ${i} payment(s) delivered before)` : "";
        return fail(`RELAYER_${r.code}`, `${r.field ? `${r.field}: ` : ""}${r.message}${delivered}`);
      }
      note.status = "spent";
      if (spend) this.#settleAllowance(spend.allowance, true);
      if (i === 0 && r.gasDropWei !== "0") this.#store.gasDropped.add(recipient);
      if (r.assetId !== undefined) assetIds.push(r.assetId);
      this.#store.save();
    }
    const t3 = o.clock.now();
    this.#timings.push({ treesMs: t1 - t0, proofsMs: t2 - t1, relayMs: t3 - t2, proofs: spends.length + notes.length });
    o.log?.(
      `${req.requestId}: ${spends.length} asset(s) and ${notes.length} note(s) (${cover.join(" + ")}) to ${recipient} via the relayer (trees ${t1 - t0} ms, ${spends.length + notes.length} proofs ${t2 - t1} ms, relayer ${t3 - t2} ms)`,
    );
    return { ok: true, assetIds };
  }

  async #spentOnChain(n: StoredNote): Promise<boolean> {
    try {
      return await Mixer__factory.connect(n.pool, this.#o.provider).nullifierSpent(
        noteNullifierHash(this.#p(), n.note),
      );
    } catch {
      // Unknown: keep it "spending"-safe by treating it as unspent; reconcile() settles it on the next start.
      return false;
    }
  }

  // ------------------------------------------------------------------ money back

  /**
   * At the end of a pseudonym's life: its money goes back to the DSO as notes the household holds,
   * without the DSO learning whose pseudonym it was. Per denomination (largest first) the pseudonym
   * deposits k x d back (FinancialDeposited) and claims k fresh note commitments at the desk under a
   * one-off key it certifies; the change below the smallest denomination stays on it. The notes are
   * stored before the deposit leaves, so a crash loses no secret. They can pay later withdrawals,
   * or be redeemed into the household's account (redeemNotes).
   */
  async depositBack(pseudonym: Signer): Promise<DepositBackOutcome> {
    const o = this.#o;
    const address = getAddress(await pseudonym.getAddress());
    const pools = [...o.pools.entries()].sort(([a], [b]) => (a > b ? -1 : 1));
    const first = pools[pools.length - 1];
    if (!o.pseudonymDesk || !first) {
      throw new PetraError("INVALID_ARGUMENT", "depositBack: needs pools and a pseudonymDesk factory");
    }
    const anyPool = Mixer__factory.connect(first[1], o.provider);
    const [marketAddress, dso] = await Promise.all([anyPool.market(), anyPool.dso()]);
    const market = EnergyMarket__factory.connect(marketAddress, pseudonym);
    let balance = await market.financialBalance(address);
    const out: DepositBackOutcome = { pseudonym: address, amount: 0n, notes: 0, change: 0n, refused: [] };
    const random = o.randomBytes ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
    for (const [denomination, pool] of pools) {
      for (let count = balance / denomination; count > 0n; ) {
        const k = count > 64n ? 64n : count;
        // A random request id: a counter from the household's store would chain its pseudonyms.
        const requestId = `back:${bytesToHex(random(12))}`;
        const entries: StoredNote[] = Array.from({ length: Number(k) }, () => ({
          note: createNote({ chainId: o.chainId, denomination, randomBytes: o.randomBytes }),
          pool: getAddress(pool),
          status: "requested",
          requestId,
          pseudonym: address,
        }));
        this.#store.notes.push(...entries);
        this.#store.save();
        const tx = await market.depositFinancial(k * denomination);
        const receipt = await tx.wait();
        if (receipt) out.lastDepositBlock = receipt.blockNumber;
        if (receipt?.status !== 1) {
          this.#store.notes = this.#store.notes.filter((n) => !entries.includes(n));
          this.#store.save();
          throw new PetraError(
            "TX_FAILED",
            `depositBack: depositFinancial(${k * denomination}) from ${address} failed`,
          );
        }
        const claimKey = bytesToHex(random(32));
        const keyCertificate = await pseudonym.signMessage(
          depositBackKeyText({ chainId: o.chainId, dso, keyHex: publicKeyHex(signingKeyFromHex(claimKey)) }),
        );
        for (const e of entries) Object.assign(e, { depositTx: tx.hash, claimKey, keyCertificate });
        this.#store.save();
        const refusal = await this.#claim(entries).catch((e: unknown) => `UNSENT: ${String(e)}`);
        if (refusal) {
          out.refused.push(refusal);
          o.log?.(`deposit-back ${address}: ${k} x ${denomination}: ${refusal} (kept; claimed again later)`);
        } else {
          out.notes += entries.length;
          out.amount += k * denomination;
        }
        balance -= k * denomination;
        count -= k;
      }
    }
    out.change = balance;
    o.log?.(`deposit-back ${address}: ${out.notes} note(s), ${out.amount} money units; change ${out.change} stays`);
    return out;
  }

  /**
   * Claims the notes of one deposit-back at the desk, as the pseudonym (its stored one-off key and
   * certificate, so a claim can be re-sent after a failure without the pseudonym's signer).
   * Undefined when the notes are in; otherwise the desk's refusal.
   */
  async #claim(entries: StoredNote[]): Promise<string | undefined> {
    const o = this.#o;
    const e0 = entries[0] as StoredNote;
    if (!o.pseudonymDesk || !e0.pseudonym || !e0.claimKey || !e0.keyCertificate || !e0.depositTx) {
      throw new PetraError("INVALID_ARGUMENT", "depositBack: a claim needs pseudonymDesk, the key and the deposit");
    }
    // The desk takes a pseudonym sender as a lower-case address.
    const desk = o.pseudonymDesk({ address: e0.pseudonym.toLowerCase(), key: signingKeyFromHex(e0.claimKey) });
    try {
      const r = await desk.depositBack({
        requestId: e0.requestId as string,
        txHash: e0.depositTx,
        denomination: e0.note.denomination,
        commitments: entries.map((e) => noteCommitment(this.#p(), e.note)),
        keyCertificate: e0.keyCertificate,
      });
      if (r.type === "deskRefused") return `${r.reason}: ${r.message}`;
      for (const e of entries) e.status = "unspent";
      this.#store.save();
      return undefined;
    } finally {
      desk.close();
    }
  }

  /**
   * Redeems every unspent note into the household's account at the desk: a mixer withdrawal proof
   * to the DSO's address, relayed by the DSO, fee 0. The desk submits it and credits the note once
   * it is mined. A refused note is looked up on chain: spent stays spent, anything else unspent.
   */
  async redeemNotes(): Promise<RedemptionOutcome> {
    const o = this.#o;
    const p = this.#p();
    const out: RedemptionOutcome = { redeemed: 0, amount: 0n, balance: undefined, refused: [] };
    // Deposit-backs whose claim did not get through: once more (the desk answers a known one again).
    const claims = new Map<string, StoredNote[]>();
    for (const n of this.#store.notes.filter((x) => x.status === "requested" && x.depositTx && x.claimKey)) {
      claims.set(n.requestId as string, [...(claims.get(n.requestId as string) ?? []), n]);
    }
    for (const entries of claims.values()) {
      const refusal = await this.#claim(entries).catch((e: unknown) => `UNSENT: ${String(e)}`);
      if (refusal) out.refused.push(refusal);
    }
    const notes = this.#store.notes.filter((n) => n.status === "unspent");
    const trees = new Map<string, MerkleTree>();
    const at = { fromBlock: o.fromBlock, toBlock: await o.provider.getBlockNumber() };
    for (const n of notes) {
      if (!trees.has(n.pool)) trees.set(n.pool, await syncMixerTree(Mixer__factory.connect(n.pool, o.provider), at));
    }
    for (const n of notes) {
      const dso = await Mixer__factory.connect(n.pool, o.provider).dso();
      const wire = await proveMixerWithdrawal({
        prover: o.prover,
        poseidon: p,
        tree: trees.get(n.pool) as MerkleTree,
        note: n.note,
        pool: n.pool,
        recipient: dso,
        relayer: dso,
        fee: 0n,
      });
      const proof = toSolidityProof(wire.proof as Parameters<typeof toSolidityProof>[0]);
      n.status = "spending";
      n.requestId = `${o.householdId}:redeem:${this.#store.nextId("r")}`;
      this.#store.save();
      const r = await o.desk.redeemNote({
        requestId: n.requestId,
        pool: getAddress(n.pool),
        root: wire.root,
        nullifierHash: wire.nullifierHash,
        proof: {
          pA: [proof.pA[0].toString(), proof.pA[1].toString()],
          pB: [
            [proof.pB[0][0].toString(), proof.pB[0][1].toString()],
            [proof.pB[1][0].toString(), proof.pB[1][1].toString()],
          ],
          pC: [proof.pC[0].toString(), proof.pC[1].toString()],
        },
      });
      if (r.type === "noteRedeemed") {
        n.status = "spent";
        out.redeemed++;
        out.amount += n.note.denomination;
        out.balance = r.balance;
      } else {
        out.refused.push(`${r.reason}: ${r.message}`);
        n.status = (await this.#spentOnChain(n)) ? "spent" : "unspent";
      }
      this.#store.save();
    }
    o.log?.(`redeemed ${out.redeemed} note(s), ${out.amount} money units; balance ${out.balance ?? "?"}`);
    return out;
  }

  /** Timings of the successful withdrawals so far, in order. */
  get timings(): readonly WithdrawalTiming[] {
    return this.#timings;
  }

  /** Money and allowances the store holds unspent, for reports. */
  holdings(): { notes: Record<string, number>; allowances: number } {
    const notes: Record<string, number> = {};
    for (const n of this.#store.notes) {
      if (n.status === "unspent")
        notes[n.note.denomination.toString()] = (notes[n.note.denomination.toString()] ?? 0) + 1;
    }
    return { notes, allowances: this.#store.allowances.filter((a) => a.status === "unspent").length };
  }
}

function refused(r: DeskRefused, what: string): PetraError {
  return new PetraError("DSO_REFUSED", `allowance desk refused ${what}: ${r.reason}: ${r.message}`, {
    reason: r.reason,
  });
}

// ------------------------------------------------------------------ process wiring

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be an address");

/** The zk part of a prosumer's config (agents/prosumer-process.ts) when it withdraws privately. */
export const privateWithdrawalConfigSchema = z
  .object({
    relayerUrl: z.string().url(),
    deskEndpoint: z.string().startsWith("tcp://"),
    vaults: z.object({ consumption: address.optional(), production: address.optional() }).strict(),
    /** Pool address by denomination (decimal string). */
    pools: z.record(z.string().regex(/^[1-9][0-9]*$/), address),
    /** Block the zk contracts were deployed in. */
    fromBlock: z.number().int().min(0),
    /** The household's private store (agents/private-store.ts). */
    storeFile: z.string().min(1),
    /** Wait per attempt for the desk's answer, ms. */
    deskTimeoutMs: z.number().positive().default(30_000),
  })
  .strict();
export type PrivateWithdrawalConfig = z.input<typeof privateWithdrawalConfigSchema>;

/**
 * Builds and prepares a PrivateWithdrawer for a prosumer process: desk client over the
 * household's transport, relayer client over the same transport (Transport.httpRoute: the
 * household's source address, or a circuit per pseudonym) unless `relayerAgent` is given, a warm
 * prover, the store. close() releases all of them.
 */
export async function startPrivateWithdrawer(o: {
  config: PrivateWithdrawalConfig;
  householdId: string;
  chainId: bigint;
  clock: Clock;
  provider: Provider;
  transport: Transport;
  relayerAgent?: http.Agent;
  dsoPublicKeyHex: string;
  longTermSecretHex: string;
  plan: WithdrawalPlan;
  log?: (line: string) => void;
}): Promise<{ withdrawer: PrivateWithdrawer; close(): Promise<void> }> {
  const c = privateWithdrawalConfigSchema.parse(o.config);
  const desk = new AllowanceDeskClient({
    endpoint: c.deskEndpoint,
    householdId: o.householdId,
    key: o.longTermSecretHex,
    clock: o.clock,
    dsoPublicKeyHex: o.dsoPublicKeyHex,
    transport: o.transport,
    timeoutMs: c.deskTimeoutMs,
    attempts: 4,
    ...(o.log ? { onError: (e: unknown) => o.log?.(`desk answer dropped: ${String(e)}`), log: o.log } : {}),
  });
  const prover = new Prover();
  const vaults: Partial<Record<Direction, string>> = {};
  if (c.vaults.consumption) vaults.consumption = c.vaults.consumption;
  if (c.vaults.production) vaults.production = c.vaults.production;
  const withdrawer = new PrivateWithdrawer({
    householdId: o.householdId,
    clock: o.clock,
    provider: o.provider,
    desk,
    relayer: new RelayerClient({
      url: c.relayerUrl,
      ...(o.relayerAgent ? { agent: o.relayerAgent } : { transport: o.transport, identity: o.householdId }),
    }),
    // Each deposit-back speaks as its pseudonym, on the route its pseudonym's own traffic takes.
    pseudonymDesk: ({ address, key }) =>
      new AllowanceDeskClient({
        endpoint: c.deskEndpoint,
        householdId: address,
        key,
        clock: o.clock,
        dsoPublicKeyHex: o.dsoPublicKeyHex,
        transport: pseudonymRoute(o.transport, o.householdId, address),
        timeoutMs: c.deskTimeoutMs,
        attempts: 4,
        ...(o.log ? { log: (line: string) => o.log?.(`deposit-back ${address}: ${line}`) } : {}),
      }),
    prover,
    store: PrivateStore.open(c.storeFile, o.householdId),
    chainId: o.chainId,
    vaults,
    pools: new Map(Object.entries(c.pools).map(([d, a]) => [BigInt(d), a])),
    fromBlock: c.fromBlock,
    ...(o.log ? { log: o.log } : {}),
  });
  const close = async () => {
    desk.close();
    await prover.close();
  };
  try {
    await withdrawer.prepare(o.plan);
  } catch (e) {
    await close();
    throw e;
  }
  return { withdrawer, close };
}

/**
 * `transport` with its ZeroMQ connections made as the pseudonym `address` of `householdId`: over
 * Tor on the pseudonym's own circuit (the "household/address" identity its JSON-RPC traffic uses
 * under address isolation); directly, from the household's source address, as all its pseudonyms'
 * traffic leaves.
 */
function pseudonymRoute(transport: Transport, householdId: string, address: string): Transport {
  const identity = transport.kind === "tor" ? `${householdId}/${address.toLowerCase()}` : householdId;
  return new Proxy(transport, {
    get(target, prop) {
      if (prop === "zmqConnect") {
        return (...[socket, endpoint, , options]: Parameters<Transport["zmqConnect"]>) =>
          target.zmqConnect(socket, endpoint, identity, options);
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/**
 * The plan for a household whose forecast is `netW` per interval: an allowance per direction it
 * will use (cap = its limit), the money consumers budget at `pricePerWInterval`, a gas drop with
 * each withdrawal when the pseudonyms' gas comes with them.
 */
export function planFromForecast(o: {
  intervals: readonly number[];
  netW: (interval: number) => number;
  pvCapacityW: number;
  connectionLimitW: number;
  pricePerWInterval: number;
  gasDrop: boolean;
}): WithdrawalPlan {
  const active = o.intervals.filter((k) => o.netW(k) !== 0);
  const capsW: Partial<Record<Direction, number>> = {};
  if (active.some((k) => o.netW(k) > 0)) capsW.production = o.pvCapacityW;
  if (active.some((k) => o.netW(k) < 0)) capsW.consumption = o.connectionLimitW;
  return {
    windowStart: Math.min(...o.intervals),
    windowEnd: Math.max(...o.intervals),
    capsW,
    withdrawals: active.map((k) => ({
      financial: o.netW(k) < 0 ? -o.netW(k) * o.pricePerWInterval : 0,
      assets: 1,
      gasDrop: o.gasDrop,
    })),
  };
}
