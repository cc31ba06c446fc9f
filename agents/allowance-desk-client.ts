import { hexToBytes } from "@noble/hashes/utils";
import { Dealer } from "zeromq";
import { check, PetraError } from "../common/errors";
import {
  type AllowanceIssued,
  type DeskAnswer,
  type DeskMessage,
  type DeskRefused,
  type Direction,
  type NotesDeposited,
  openDeskEnvelope,
  sealDeskEnvelope,
} from "./allowance-messages";
import { type SigningKey, signingKeyFromHex } from "./envelope";
import type { Cancel, Clock, Transport } from "./interfaces";

/**
 * The household's side of the DSO's allowance desk (agents/dso-allowance-desk.ts): a ZeroMQ
 * DEALER that sends signed requests and waits for the desk's signed answers.
 *
 *   const desk = new AllowanceDeskClient({ endpoint, householdId, key, clock, dsoPublicKeyHex });
 *   const r = await desk.requestAllowance({ requestId, direction: "consumption", capW, windowStart, windowEnd, commitment });
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
  readonly #pending = new Map<string, (answer: DeskAnswer) => void>();
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
    commitment: bigint;
  }): Promise<AllowanceIssued | DeskRefused> {
    return this.#call({ type: "allowanceRequest", ...r, commitment: r.commitment.toString() }) as Promise<
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

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dealer.close();
    this.#pending.clear();
  }

  async #call(message: DeskMessage & { requestId: string }): Promise<DeskAnswer> {
    if (this.#closed) throw new PetraError("DSO_UNAVAILABLE", "desk client is closed");
    const { requestId } = message;
    check(!this.#pending.has(requestId), "requestId", `"${requestId}" is already in flight on this client`);
    const answered = new Promise<DeskAnswer>((resolve) => this.#pending.set(requestId, resolve));
    let timer: Cancel | undefined;
    try {
      for (let attempt = 1; attempt <= this.#attempts; attempt++) {
        const bytes = sealDeskEnvelope({
          from: this.householdId,
          key: this.#key,
          message,
          timestampMs: this.#clock.now(),
        });
        this.#sendChain = this.#sendChain
          .then(() => (this.#closed ? undefined : this.#dealer.send(bytes)))
          .catch((e) => this.#onError?.(e));
        const timedOut = new Promise<"timeout">((resolve) => {
          timer = this.#clock.schedule(this.#clock.now() + this.#timeoutMs, () => resolve("timeout"));
        });
        const outcome = await Promise.race([answered, timedOut]);
        timer?.cancel();
        if (outcome !== "timeout") return outcome;
      }
      throw new PetraError(
        "DSO_UNAVAILABLE",
        `no answer from the allowance desk for "${requestId}" after ${this.#attempts} x ${this.#timeoutMs} ms`,
        { requestId },
      );
    } finally {
      timer?.cancel();
      this.#pending.delete(requestId);
    }
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
            this.#pending.get(m.requestId)?.(m);
            break;
          case "deskRefused":
            if (m.requestId === null) this.#onError?.(new PetraError("DSO_REFUSED", `desk: ${m.reason}: ${m.message}`));
            else this.#pending.get(m.requestId)?.(m);
            break;
          case "allowanceRequest":
          case "noteDepositRequest":
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
