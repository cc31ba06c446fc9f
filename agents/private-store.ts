import * as fs from "node:fs";
import * as path from "node:path";
import { getAddress } from "ethers";
import { z } from "zod";
import { check, PetraError } from "../common/errors";
import type { Allowance } from "../mixer/allowance";
import { type MixerNote, parseNote, serializeNote } from "../mixer/note";
import type { Direction } from "./allowance-messages";

/**
 * A household's private zero-knowledge state, in one small JSON file it alone reads: its
 * allowances (cap, window, secret, nullifier) and mixer notes, each with where it stands. The
 * secrets are the household's energy and money: the file is written atomically (temp file and
 * rename, mode 0600) after every change, before the change is acted on, so a crash never loses
 * a secret whose commitment may be on chain.
 *
 * Lifecycle of an entry: "requested" (the desk was asked to issue/deposit it) -> "unspent" (on
 * chain) -> "spending" (a proof is on its way through the relayer) -> "spent". The parts a spend
 * leaves are stored "pending" under their parent before the spend is sent, and become "unspent"
 * when it lands; see PrivateWithdrawer for how a crash in between is settled.
 */

export type EntryStatus = "requested" | "unspent" | "spending" | "spent" | "pending";

export interface StoredAllowance extends Allowance {
  id: string;
  direction: Direction;
  vault: string;
  status: EntryStatus;
  /** The desk request that issued it (for a re-send after a crash). */
  requestId?: string;
  /** The allowance whose spend creates this part. */
  parent?: string;
}

export interface StoredNote {
  note: MixerNote;
  pool: string;
  status: EntryStatus;
  requestId?: string;
  /** Set for a note a pseudonym's deposit-back paid for (not the household's account). */
  pseudonym?: string;
  /** The pseudonym's FinancialDeposited transaction that paid for it. */
  depositTx?: string;
  /** The one-off desk key (secret, hex) and the pseudonym's certificate for it: to re-send the claim. */
  claimKey?: string;
  keyCertificate?: string;
}

const decimal = z.string().regex(/^[0-9]+$/);
const status = z.enum(["requested", "unspent", "spending", "spent", "pending"]);
const fileSchema = z
  .object({
    version: z.literal(1),
    householdId: z.string().min(1),
    allowances: z.array(
      z
        .object({
          id: z.string().min(1),
          direction: z.enum(["consumption", "production"]),
          vault: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
          capW: decimal,
          windowStart: decimal,
          windowEnd: decimal,
          secret: decimal,
          nullifier: decimal,
          status,
          requestId: z.string().optional(),
          parent: z.string().optional(),
        })
        .strict(),
    ),
    notes: z.array(
      z
        .object({
          note: z.string(),
          pool: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
          status,
          requestId: z.string().optional(),
          pseudonym: z
            .string()
            .regex(/^0x[0-9a-fA-F]{40}$/)
            .optional(),
          depositTx: z
            .string()
            .regex(/^0x[0-9a-f]{64}$/)
            .optional(),
          claimKey: z
            .string()
            .regex(/^[0-9a-f]{64}$/)
            .optional(),
          keyCertificate: z
            .string()
            .regex(/^0x[0-9a-fA-F]{130}$/)
            .optional(),
        })
        .strict(),
    ),
    /** Pseudonyms the relayer already sent gas to. */
    gasDropped: z.array(z.string()),
    /** Counter for ids and request ids, so that they never repeat across restarts. */
    seq: z.number().int().min(0),
  })
  .strict();

export class PrivateStore {
  readonly file: string;
  readonly householdId: string;
  allowances: StoredAllowance[] = [];
  notes: StoredNote[] = [];
  readonly gasDropped = new Set<string>();
  #seq = 0;

  private constructor(file: string, householdId: string) {
    this.file = file;
    this.householdId = householdId;
  }

  /** Opens the store at `file`, creating an empty one. Refuses a file of another household. */
  static open(file: string, householdId: string): PrivateStore {
    check(typeof file === "string" && file.length > 0, "file", "must be a path");
    const store = new PrivateStore(path.resolve(file), householdId);
    if (!fs.existsSync(store.file)) {
      store.save();
      return store;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(store.file, "utf8"));
    } catch (e) {
      throw new PetraError("INVALID_ARGUMENT", `store: ${store.file} is not JSON: ${(e as Error).message}`, {
        parameter: "store",
      });
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new PetraError("INVALID_ARGUMENT", `store ${store.file}: ${issue?.path.join(".")}: ${issue?.message}`, {
        parameter: "store",
      });
    }
    const d = parsed.data;
    check(d.householdId === householdId, "store", `${store.file} belongs to "${d.householdId}", not "${householdId}"`);
    store.allowances = d.allowances.map((a) => ({
      ...a,
      vault: getAddress(a.vault),
      capW: BigInt(a.capW),
      windowStart: BigInt(a.windowStart),
      windowEnd: BigInt(a.windowEnd),
      secret: BigInt(a.secret),
      nullifier: BigInt(a.nullifier),
    }));
    store.notes = d.notes.map((n) => ({ ...n, pool: getAddress(n.pool), note: parseNote(n.note) }));
    for (const a of d.gasDropped) store.gasDropped.add(getAddress(a));
    store.#seq = d.seq;
    return store;
  }

  /** A fresh id, unique in this store forever. */
  nextId(prefix: string): string {
    this.#seq++;
    return `${prefix}${this.#seq}`;
  }

  save(): void {
    const data: z.infer<typeof fileSchema> = {
      version: 1,
      householdId: this.householdId,
      allowances: this.allowances.map((a) => ({
        id: a.id,
        direction: a.direction,
        vault: a.vault,
        capW: a.capW.toString(),
        windowStart: a.windowStart.toString(),
        windowEnd: a.windowEnd.toString(),
        secret: a.secret.toString(),
        nullifier: a.nullifier.toString(),
        status: a.status,
        ...(a.requestId ? { requestId: a.requestId } : {}),
        ...(a.parent ? { parent: a.parent } : {}),
      })),
      notes: this.notes.map((n) => ({
        note: serializeNote(n.note),
        pool: n.pool,
        status: n.status,
        ...(n.requestId ? { requestId: n.requestId } : {}),
        ...(n.pseudonym ? { pseudonym: n.pseudonym } : {}),
        ...(n.depositTx ? { depositTx: n.depositTx } : {}),
        ...(n.claimKey ? { claimKey: n.claimKey } : {}),
        ...(n.keyCertificate ? { keyCertificate: n.keyCertificate } : {}),
      })),
      gasDropped: [...this.gasDropped],
      seq: this.#seq,
    };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(data, null, 1)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}
