import { hexToBytes } from "@noble/hashes/utils";
import { Dealer } from "zeromq";
import { check, PetraError } from "../common/errors";
import {
  type AllowanceIssued,
  type DeskAnswer,
  type DeskMessage,
  type DeskRefused,
  type Direction,
  type NoteRedeemed,
  type NoteRedemptionRequest,
  type NotesDeposited,
  openDeskEnvelope,
  sealDeskEnvelope,
} from "./allowance-messages";
import { type SigningKey, signingKeyFromHex } from "./envelope";
import type { Clock, Transport } from "./interfaces";
import { RequestTracker } from "./request-tracker";

/**
 * The household's side of the DSO's allowance desk (agents/dso-allowance-desk.ts): a ZeroMQ
 * DEALER that sends signed requests and waits for the desk's signed answers.
 *
 *   const desk = new AllowanceDeskClient({ endpoint, householdId, key, clock, dsoPublicKeyHex });
 *   const r = await desk.requestAllowance({ requestId, direction: "consumption", capW, windowStart, windowEnd, inner });
 *   r.type === "allowanceIssued" ? r.txHash : r.reason;   // DeskRefusalReason, e.g. "OVER_CONNECTION_LIMIT"
 *   await desk.depositNotes({ requestId, denomination: 10000n, commitments });
 *   desk.close();
 *
 * Like the DSO client, a retry re-sends the same requestId in a fresh envelope and the desk
 * answers it with the same outcome; it rejects (DSO_UNAVAILABLE) only when no answer came.
 * Answers not signed by the DSO's key are dropped.
 */
export interface AllowanceDeskClientOptions {
  endpoint: string;
  householdId: string;
  key: SigningKey | string;
  clock: Clock;
  /** The DSO's Ed25519 public key, hex: answers signed by anything else are dropped. */
  dsoPublicKeyHex: string;
  transport?: Transport;
  /** Wait per attempt. Default 30 000 (an answer comes once the insertion is mined). */
  timeoutMs?: number;
  /** Default 3. */
  attempts?: number;
  onError?: (error: unknown) => void;
}

export class AllowanceDeskClient {
  readonly householdId: string;
  readonly #key: SigningKey;
  readonly #clock: Clock;
  readonly #dealer: Dealer;
  readonly #dsoKey: Uint8Array;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #onError?: (error: unknown) => void;
  readonly #requests: RequestTracker<undefined>;
  #sendChain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: AllowanceDeskClientOptions) {
    check(
      typeof opts.endpoint === "string" && opts.endpoint.length > 0,
      "endpoint",
      "must be a ZeroMQ endpoint string",
    );
    check(/^[0-9a-f]{64}$/.test(opts.dsoPublicKeyHex ?? ""), "dsoPublicKeyHex", "must be 32 bytes of lower-case hex");
    check(opts.timeoutMs === undefined || opts.timeoutMs > 0, "timeoutMs", "must be > 0");
    check(
      opts.attempts === undefined || (Number.isInteger(opts.attempts) && opts.attempts >= 1),
      "attempts",
      "must be >= 1",
    );
    this.householdId = opts.householdId;
    this.#key = typeof opts.key === "string" ? signingKeyFromHex(opts.key) : opts.key;
    this.#clock = opts.clock;
    this.#requests = new RequestTracker(opts.clock);
    this.#dsoKey = hexToBytes(opts.dsoPublicKeyHex);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#attempts = opts.attempts ?? 3;
    this.#onError = opts.onError;
    this.#dealer = new Dealer({ linger: 0 });
    if (opts.transport) opts.transport.zmqConnect(this.#dealer, opts.endpoint, opts.householdId);
    else this.#dealer.connect(opts.endpoint);
    void this.#receiveLoop();
  }

  requestAllowance(r: {
    requestId: string;
    direction: Direction;
    capW: number;
    windowStart: number;
    windowEnd: number;
    /** Poseidon(2)(secret, nullifier) (mixer/allowance.ts allowanceInner); the desk computes the leaf. */
    inner: bigint;
  }): Promise<AllowanceIssued | DeskRefused> {
    return this.#call({ type: "allowanceRequest", ...r, inner: r.inner.toString() }) as Promise<
      AllowanceIssued | DeskRefused
    >;
  }

  depositNotes(r: {
    requestId: string;
    denomination: bigint;
    commitments: readonly bigint[];
  }): Promise<NotesDeposited | DeskRefused> {
    return this.#call({
      type: "noteDepositRequest",
      requestId: r.requestId,
      denomination: r.denomination.toString(),
      commitments: r.commitments.map(String),
    }) as Promise<NotesDeposited | DeskRefused>;
  }

  /**
   * As a pseudonym (this client's householdId is then the pseudonym's address and its key a one-off
   * key): claim the money `txHash` deposited back as notes of `denomination`.
   */
  depositBack(r: {
    requestId: string;
    txHash: string;
    denomination: bigint;
    commitments: readonly bigint[];
    /** The pseudonym's EIP-191 signature over depositBackKeyText for this client's key. */
    keyCertificate: string;
  }): Promise<NotesDeposited | DeskRefused> {
    return this.#call({
      type: "depositBackRequest",
      requestId: r.requestId,
      txHash: r.txHash,
      denomination: r.denomination.toString(),
      commitments: r.commitments.map(String),
      keyCertificate: r.keyCertificate,
    }) as Promise<NotesDeposited | DeskRefused>;
  }

  /** Redeem a mixer note into the household's account (a withdrawal proof to the DSO, fee 0). */
  redeemNote(r: Omit<NoteRedemptionRequest, "type">): Promise<NoteRedeemed | DeskRefused> {
    return this.#call({ type: "noteRedemptionRequest", ...r }) as Promise<NoteRedeemed | DeskRefused>;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dealer.close();
    this.#requests.rejectAll(
      (id) => new PetraError("DSO_UNAVAILABLE", `desk client closed while waiting for "${id}"`, { requestId: id }),
    );
  }

  async #call(message: DeskMessage & { requestId: string }): Promise<DeskAnswer> {
    if (this.#closed) throw new PetraError("DSO_UNAVAILABLE", "desk client is closed");
    const { requestId } = message;
    const sealed = () =>
      sealDeskEnvelope({ from: this.householdId, key: this.#key, message, timestampMs: this.#clock.now() });
    return (await this.#requests.call(
      requestId,
      undefined,
      { attempts: this.#attempts, timeoutMs: this.#timeoutMs },
      () => {
        const bytes = sealed();
        this.#sendChain = this.#sendChain
          .then(() => (this.#closed ? undefined : this.#dealer.send(bytes)))
          .catch((e) => this.#onError?.(e));
      },
      () =>
        new PetraError(
          "DSO_UNAVAILABLE",
          `no answer from the allowance desk for "${requestId}" after ${this.#attempts} x ${this.#timeoutMs} ms`,
          { requestId },
        ),
    )) as DeskAnswer;
  }

  async #receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.#dealer) {
        const opened = openDeskEnvelope(frames[frames.length - 1], {
          nowMs: this.#clock.now(),
          maxClockSkewMs: Number.MAX_SAFE_INTEGER,
          resolveKey: (from) => (from === "dso" ? this.#dsoKey : undefined),
        });
        if (!opened.ok) {
          this.#onError?.(new PetraError("INVALID_MESSAGE", `desk answer dropped: ${opened.reason}: ${opened.detail}`));
          continue;
        }
        const m = opened.envelope.message;
        switch (m.type) {
          case "allowanceIssued":
          case "notesDeposited":
          case "noteRedeemed":
            this.#requests.get(m.requestId)?.resolve(m);
            break;
          case "deskRefused": {
            if (m.requestId === null) {
              this.#onError?.(new PetraError("DSO_REFUSED", `desk: ${m.reason}: ${m.message}`));
              break;
            }
            // A refusal of one attempt's envelope: see RequestTracker.
            const p = this.#requests.get(m.requestId);
            if (p && !p.answersRequest(m.reason)) break;
            p?.resolve(m);
            break;
          }
          case "allowanceRequest":
          case "noteDepositRequest":
          case "depositBackRequest":
          case "noteRedemptionRequest":
            this.#onError?.(new PetraError("INVALID_MESSAGE", `unexpected "${m.type}" from the desk`));
            break;
          default: {
            const never: never = m;
            this.#onError?.(new PetraError("INVALID_MESSAGE", `unknown message ${(never as { type: string }).type}`));
          }
        }
      }
    } catch (e) {
      if (!this.#closed) this.#onError?.(e);
    }
  }
}
