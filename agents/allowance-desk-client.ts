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
 *
 * A retry does not go over the connection its attempt went unanswered on: the client replaces it
 * by a new one, over a fresh circuit in Tor mode (Transport.zmqConnect with freshCircuit), and
 * sends the other requests waiting on it again there (fresh envelopes, same requestIds; what was
 * queued on the old connection is dropped with it). libzmq's own reconnects keep the socket's
 * SOCKS credentials, and tor may keep attaching them to a circuit that leads nowhere (see
 * TorTransport.zmqConnect); a connection that is up can lose its far end the same way.
 */
export interface AllowanceDeskClientOptions {
  endpoint: string;
  householdId: string;
  key: SigningKey | string;
  clock: Clock;
  /** The DSO's Ed25519 public key, hex: answers signed by anything else are dropped. */
  dsoPublicKeyHex: string;
  /** How the connection leaves (its identity is `householdId`). Default: straight to `endpoint`. */
  transport?: Pick<Transport, "zmqConnect">;
  /** Wait per attempt. Default 30 000 (an answer comes once the insertion is mined). */
  timeoutMs?: number;
  /** Default 3. */
  attempts?: number;
  onError?: (error: unknown) => void;
  /** A line per replaced connection, saying why. Default: silent. */
  log?: (line: string) => void;
}

/** What the client did with its connections. */
export interface DeskConnectionStats {
  /** Connections opened, the first one included. */
  connections: number;
  /** Connections replaced before a retry, after an attempt went unanswered on them. */
  replaced: number;
}

/** One ZeroMQ connection to the desk; replaced, never reopened. */
interface DeskConnection {
  readonly dealer: Dealer;
  /** Counts from 1 with each connection the client opens. */
  readonly generation: number;
}

export class AllowanceDeskClient {
  readonly householdId: string;
  readonly #key: SigningKey;
  readonly #clock: Clock;
  readonly #endpoint: string;
  readonly #transport?: Pick<Transport, "zmqConnect">;
  readonly #dsoKey: Uint8Array;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #onError?: (error: unknown) => void;
  readonly #log?: (line: string) => void;
  readonly #requests: RequestTracker<undefined>;
  readonly #stats: DeskConnectionStats = { connections: 0, replaced: 0 };
  #connection: DeskConnection;
  #sendChain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: AllowanceDeskClientOptions) {
    check(
      typeof opts.endpoint === "string" && opts.endpoint.length > 0,
      "endpoint",
      "must be a ZeroMQ endpoint string",
    );
    check(
      typeof opts.householdId === "string" && opts.householdId.length > 0,
      "householdId",
      "must be a non-empty string",
    );
    check(/^[0-9a-f]{64}$/.test(opts.dsoPublicKeyHex ?? ""), "dsoPublicKeyHex", "must be 32 bytes of lower-case hex");
    check(
      opts.timeoutMs === undefined || (Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0),
      "timeoutMs",
      `must be a number > 0, got ${opts.timeoutMs}`,
    );
    check(
      opts.attempts === undefined || (Number.isInteger(opts.attempts) && opts.attempts >= 1),
      "attempts",
      `must be an integer >= 1, got ${opts.attempts}`,
    );
    this.householdId = opts.householdId;
    this.#key = typeof opts.key === "string" ? signingKeyFromHex(opts.key) : opts.key;
    this.#clock = opts.clock;
    this.#endpoint = opts.endpoint;
    if (opts.transport) this.#transport = opts.transport;
    this.#requests = new RequestTracker(opts.clock);
    this.#dsoKey = hexToBytes(opts.dsoPublicKeyHex);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#attempts = opts.attempts ?? 3;
    this.#onError = opts.onError;
    this.#log = opts.log;
    this.#connection = this.#open(false);
  }

  /** Connections opened and replaced so far (a copy). */
  stats(): DeskConnectionStats {
    return { ...this.#stats };
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
    this.#connection.dealer.close();
    this.#requests.rejectAll(
      (id) => new PetraError("DSO_UNAVAILABLE", `desk client closed while waiting for "${id}"`, { requestId: id }),
    );
  }

  async #call(message: DeskMessage & { requestId: string }): Promise<DeskAnswer> {
    if (this.#closed) throw new PetraError("DSO_UNAVAILABLE", "desk client is closed");
    const { requestId } = message;
    // The connection this request's last envelope went out on.
    let sentOn = 0;
    return (await this.#requests.call(
      requestId,
      undefined,
      { attempts: this.#attempts, timeoutMs: this.#timeoutMs },
      (attempt) => {
        // A retry: the attempt before went unanswered over this connection, so the retry does not
        // use it (unless another request replaced it since).
        if (attempt > 1 && sentOn === this.#connection.generation) {
          this.#replace(
            `no answer to "${requestId}" within ${this.#timeoutMs} ms (attempt ${attempt - 1} of ${this.#attempts})`,
            requestId,
          );
        }
        sentOn = this.#connection.generation;
        this.#send(
          sealDeskEnvelope({ from: this.householdId, key: this.#key, message, timestampMs: this.#clock.now() }),
        );
      },
      () =>
        new PetraError(
          "DSO_UNAVAILABLE",
          `no answer from the allowance desk for "${requestId}" after ${this.#attempts} x ${this.#timeoutMs} ms` +
            ` (${this.#stats.connections} connection(s) tried)`,
          { requestId, endpoint: this.#endpoint, connections: this.#stats.connections },
        ),
    )) as DeskAnswer;
  }

  /** Queues `bytes` on the current connection, in order with the sends before. */
  #send(bytes: Uint8Array): void {
    const { dealer } = this.#connection;
    this.#sendChain = this.#sendChain
      .then(() => (this.#closed || dealer.closed ? undefined : dealer.send(bytes)))
      .catch((e) => {
        // A send on a connection replaced meanwhile fails with it; its requests went out again.
        if (!dealer.closed) this.#onError?.(e);
      });
  }

  /** A new connection: the first, or a replacement over a fresh circuit. */
  #open(freshCircuit: boolean): DeskConnection {
    const dealer = new Dealer({ linger: 0 });
    try {
      if (this.#transport) {
        this.#transport.zmqConnect(dealer, this.#endpoint, this.householdId, freshCircuit ? { freshCircuit } : {});
      } else {
        dealer.connect(this.#endpoint);
      }
    } catch (e) {
      dealer.close();
      throw e;
    }
    void this.#receiveLoop(dealer);
    return { dealer, generation: ++this.#stats.connections };
  }

  /**
   * Drops the current connection (and what is queued on it) for a new one over a fresh circuit,
   * and sends the waiting requests again on it, all but `except` (whose retry sends it).
   */
  #replace(reason: string, except: string): void {
    const old = this.#connection;
    old.dealer.close();
    this.#connection = this.#open(true);
    this.#stats.replaced++;
    this.#log?.(
      `desk connection ${old.generation} replaced by ${this.#connection.generation} (fresh circuit): ${reason}`,
    );
    this.#requests.resendAll(except);
  }

  async #receiveLoop(dealer: Dealer): Promise<void> {
    try {
      for await (const frames of dealer) {
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
      // Closing a connection (the client's, or a replaced one) ends its loop with an error.
      if (!this.#closed && !dealer.closed) this.#onError?.(e);
    }
  }
}
