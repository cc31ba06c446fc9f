import { hexToBytes } from "@noble/hashes/utils";
import { check, PetraError } from "../common/errors";
import { decodeEnvelope, type SigningKey, sealEnvelope, signingKeyFromHex, verifyEnvelope } from "./envelope";
import type { Clock, DealerSocket, MessageSockets, Transport } from "./interfaces";
import type { AssetRequest, FailureReason, MessageInput } from "./messages";
import { RequestTracker } from "./request-tracker";
import { zmqSockets } from "./zmq-sockets";

/**
 * The prosumer's side of the DSO conversation: a ZeroMQ DEALER that sends signed requests and
 * waits for the DSO's signed answers.
 *
 *   const client = new DsoClient({ endpoint: "tcp://127.0.0.1:5555", householdId: "h1", key: secretHex, clock });
 *   const r = await client.withdraw({ anonAddress, assets: [{ powerW: 1500, start: 12, end: 12 }], financial: 0, requestId: "h1-12-0" });
 *   if (r.status === "accepted") r.assetIds;   // bigint[], in the order of `assets`
 *   else r.reason;                              // FailureReason, e.g. "OVER_PV_CAPACITY"; r.message says why
 *   const { balance, anonAddresses } = await client.balance();
 *   client.close();
 *
 * - `withdraw` resolves with the DSO's answer, accepted or failed; it rejects (PetraError
 *   "DSO_UNAVAILABLE") only when no answer came after `attempts` tries of `timeoutMs` each.
 *   Retries re-send the same requestId in a fresh envelope; the DSO is idempotent per
 *   (household, requestId), so a retry after a DSO crash returns the original mint, never a
 *   second one. Reuse a requestId only for the same request (else REQUEST_CONFLICT).
 * - `key` is the household's long-term Ed25519 secret (32-byte hex or a SigningKey).
 * - `transport` + `identity`: the connection leaves through transport.zmqEndpoint(endpoint,
 *   identity ?? householdId), so a pseudonym can talk to the DSO over its own path.
 * - `dsoPublicKeyHex`: when given, answers not signed by this key are dropped. Without it the
 *   answers are parsed but not authenticated; give it in anything but a quick test.
 * - Timeouts run on the injected clock, so the client works under a simulated clock too.
 */
export interface DsoClientOptions {
  endpoint: string;
  householdId: string;
  key: SigningKey | string;
  clock: Clock;
  transport?: Transport;
  identity?: string;
  /** How the socket is opened. Default: real ZeroMQ through `transport` (agents/zmq-sockets.ts). */
  sockets?: MessageSockets;
  dsoPublicKeyHex?: string;
  /** Wait per attempt. Default 10 000. */
  timeoutMs?: number;
  /** Tries per request. Default 3. */
  attempts?: number;
  /** Answers that cannot be read or authenticated. Default: ignore. */
  onError?: (error: unknown) => void;
}

export interface WithdrawRequest {
  anonAddress: string;
  assets: AssetRequest[];
  /** Money units. */
  financial: number;
  requestId: string;
  /** Ask the DSO to fund the address's gas ("dso" gas mode). Default false. */
  fundGas?: boolean;
}

export type WithdrawResult =
  | {
      status: "accepted";
      requestId: string;
      anonAddress: string;
      assetIds: bigint[];
      financial: number;
      gasFundedWei: bigint;
      /** Household balance after this request, money units. */
      balance: number;
    }
  | { status: "failed"; requestId: string; anonAddress: string; reason: FailureReason; message: string };

export interface BalanceResult {
  balance: number;
  anonAddresses: string[];
}

export interface CallOptions {
  timeoutMs?: number;
  attempts?: number;
}

export class DsoClient {
  readonly householdId: string;
  readonly #key: SigningKey;
  readonly #clock: Clock;
  readonly #dealer: DealerSocket;
  readonly #dsoKey: Uint8Array | undefined;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #onError?: (error: unknown) => void;
  readonly #requests: RequestTracker<"withdraw" | "balance">;
  #sendChain: Promise<void> = Promise.resolve();
  #closed = false;
  #balanceSeq = 0;

  constructor(opts: DsoClientOptions) {
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
    check(opts.timeoutMs === undefined || opts.timeoutMs > 0, "timeoutMs", "must be > 0");
    check(
      opts.attempts === undefined || (Number.isInteger(opts.attempts) && opts.attempts >= 1),
      "attempts",
      "must be an integer >= 1",
    );
    check(
      opts.dsoPublicKeyHex === undefined || /^[0-9a-f]{64}$/.test(opts.dsoPublicKeyHex),
      "dsoPublicKeyHex",
      "must be 32 bytes of lower-case hex",
    );
    this.householdId = opts.householdId;
    this.#key = typeof opts.key === "string" ? signingKeyFromHex(opts.key) : opts.key;
    this.#clock = opts.clock;
    this.#requests = new RequestTracker(opts.clock);
    this.#dsoKey = opts.dsoPublicKeyHex === undefined ? undefined : hexToBytes(opts.dsoPublicKeyHex);
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#attempts = opts.attempts ?? 3;
    this.#onError = opts.onError;
    this.#dealer = (opts.sockets ?? zmqSockets(opts.transport)).connectDealer(
      opts.endpoint,
      opts.identity ?? opts.householdId,
    );
    void this.#receiveLoop();
  }

  /** Asks the DSO to mint; see the file comment for the retry and idempotency contract. */
  async withdraw(request: WithdrawRequest, options: CallOptions = {}): Promise<WithdrawResult> {
    check(
      typeof request.requestId === "string" && request.requestId.length > 0,
      "requestId",
      "must be a non-empty string",
    );
    const message: MessageInput = {
      type: "withdrawAssets",
      requestId: request.requestId,
      anonAddress: request.anonAddress,
      assets: request.assets,
      financial: request.financial,
      fundGas: request.fundGas ?? false,
    };
    return (await this.#call(request.requestId, "withdraw", message, options)) as WithdrawResult;
  }

  /** The household's account balance and the anonymous addresses the DSO has bound to it. */
  async balance(options: CallOptions = {}): Promise<BalanceResult> {
    // Balance queries have no caller-chosen id; a per-client counter plus the clock keeps them apart.
    const requestId = `balance-${this.#clock.now()}-${this.#balanceSeq++}`;
    return (await this.#call(requestId, "balance", { type: "balanceQuery", requestId }, options)) as BalanceResult;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dealer.close();
    this.#requests.rejectAll(
      (id) => new PetraError("DSO_UNAVAILABLE", `client closed while waiting for "${id}"`, { requestId: id }),
    );
  }

  async #call(
    requestId: string,
    kind: "withdraw" | "balance",
    message: MessageInput,
    options: CallOptions,
  ): Promise<unknown> {
    if (this.#closed) throw new PetraError("DSO_UNAVAILABLE", "client is closed", { requestId });
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const attempts = options.attempts ?? this.#attempts;
    return this.#requests.call(
      requestId,
      kind,
      { attempts, timeoutMs },
      () =>
        this.#send(sealEnvelope({ from: this.householdId, key: this.#key, message, timestampMs: this.#clock.now() })),
      () =>
        new PetraError(
          "DSO_UNAVAILABLE",
          `no answer from the DSO for "${requestId}" after ${attempts} x ${timeoutMs} ms`,
          {
            requestId,
            attempts,
            timeoutMs,
          },
        ),
    );
  }

  #send(bytes: Uint8Array): void {
    this.#sendChain = this.#sendChain
      .then(() => (this.#closed ? undefined : this.#dealer.send(bytes)))
      .catch((e) => this.#onError?.(e));
  }

  async #receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.#dealer) {
        const frame = frames[frames.length - 1];
        const decoded = decodeEnvelope(frame);
        if (!decoded.ok) {
          this.#onError?.(
            new PetraError("INVALID_MESSAGE", `unreadable answer from the DSO: ${decoded.detail}`, {
              reason: decoded.reason,
            }),
          );
          continue;
        }
        const env = decoded.envelope;
        if (this.#dsoKey && !verifyEnvelope(env, this.#dsoKey)) {
          this.#onError?.(
            new PetraError("INVALID_MESSAGE", "answer not signed by the DSO's key: dropped", { from: env.from }),
          );
          continue;
        }
        const m = env.message;
        switch (m.type) {
          case "withdrawalAccepted":
            this.#requests.get(m.requestId)?.resolve({
              status: "accepted",
              requestId: m.requestId,
              anonAddress: m.anonAddress,
              assetIds: m.assetIds.map((id) => BigInt(id)),
              financial: m.financial,
              gasFundedWei: BigInt(m.gasFundedWei),
              balance: m.balance,
            } satisfies WithdrawResult);
            break;
          case "failedWithdrawal": {
            if (m.requestId === null) {
              this.#onError?.(
                new PetraError("DSO_REFUSED", `DSO refused an unidentifiable message: ${m.reason}: ${m.message}`, {
                  reason: m.reason,
                }),
              );
              break;
            }
            const p = this.#requests.get(m.requestId);
            // A refusal of one attempt's envelope: see RequestTracker.
            if (p && !p.answersRequest(m.reason)) break;
            if (p?.tag === "balance") {
              p.reject(new PetraError("DSO_REFUSED", `${m.reason}: ${m.message}`, { reason: m.reason }));
            } else {
              p?.resolve({
                status: "failed",
                requestId: m.requestId,
                anonAddress: m.anonAddress ?? "",
                reason: m.reason,
                message: m.message,
              } satisfies WithdrawResult);
            }
            break;
          }
          case "balanceReport":
            this.#requests
              .get(m.requestId)
              ?.resolve({ balance: m.balance, anonAddresses: m.anonAddresses } satisfies BalanceResult);
            break;
          case "withdrawAssets":
          case "balanceQuery":
            this.#onError?.(new PetraError("INVALID_MESSAGE", `unexpected "${m.type}" from the DSO`));
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
