import { check } from "../common/errors";
import type { Cancel, Clock } from "./interfaces";

/** Refusals that concern one envelope (its timestamp or nonce), not the request it carries. */
const ENVELOPE_REFUSALS: ReadonlySet<string> = new Set(["STALE_TIMESTAMP", "REPLAYED_NONCE"]);

/**
 * The request/answer bookkeeping of a client that sends signed envelopes over a ZeroMQ DEALER and
 * waits for signed answers carrying the same requestId: the DSO client (agents/dso-client.ts) and
 * the allowance desk client (agents/allowance-desk-client.ts).
 *
 * Each attempt sends a fresh envelope (new nonce and timestamp: re-sending the same bytes would be
 * a replay) and waits `timeoutMs` on the injected clock, so it works under a simulated clock too.
 * The server is idempotent per requestId, so a late answer to an earlier attempt is as good as an
 * answer to the latest one, with one exception: a refusal of the envelope itself (a stale
 * timestamp or a replayed nonce, e.g. an attempt that sat in a queue while the server was down)
 * says nothing about the attempts sent after it. Such a refusal settles the request only once
 * every envelope sent for it has been refused (answersRequest).
 */
export interface PendingRequest<T> {
  /** What the caller stored with the request (e.g. which kind of answer it expects). */
  readonly tag: T;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /**
   * Whether a refusal for `reason` settles the request: any refusal of the request does; a refusal
   * of one envelope (ENVELOPE_REFUSALS) only once every envelope sent so far has been refused.
   */
  answersRequest(reason: string): boolean;
}

interface Entry<T> extends PendingRequest<T> {
  sent: number;
  refused: number;
  /** The attempt under way (1-based), 0 before the first send. */
  attempt: number;
  send: (attempt: number) => void;
}

export interface AttemptOptions {
  attempts: number;
  timeoutMs: number;
}

export class RequestTracker<T> {
  readonly #pending = new Map<string, Entry<T>>();

  constructor(private readonly clock: Clock) {}

  get(requestId: string): PendingRequest<T> | undefined {
    return this.#pending.get(requestId);
  }

  /**
   * Sends (sendAttempt(attempt) seals and queues one fresh envelope; attempt counts from 1) until
   * an answer settles the request, up to `attempts` times; then throws what `unavailable` makes.
   * The request stays registered, and answers reach it through get(), until this returns.
   */
  async call(
    requestId: string,
    tag: T,
    options: AttemptOptions,
    sendAttempt: (attempt: number) => void,
    unavailable: () => Error,
  ): Promise<unknown> {
    check(!this.#pending.has(requestId), "requestId", `"${requestId}" is already in flight on this client`);
    let entry: Entry<T> | undefined;
    const answered = new Promise<unknown>((resolve, reject) => {
      entry = {
        tag,
        resolve,
        reject,
        sent: 0,
        refused: 0,
        attempt: 0,
        send: sendAttempt,
        answersRequest: (reason) => {
          if (!ENVELOPE_REFUSALS.has(reason)) return true;
          const e = entry as Entry<T>;
          return ++e.refused >= e.sent;
        },
      };
    });
    this.#pending.set(requestId, entry as Entry<T>);
    let timer: Cancel | undefined;
    try {
      for (let attempt = 1; attempt <= options.attempts; attempt++) {
        (entry as Entry<T>).attempt = attempt;
        (entry as Entry<T>).sent++;
        sendAttempt(attempt);
        const timedOut = new Promise<"timeout">((resolve) => {
          timer = this.clock.schedule(this.clock.now() + options.timeoutMs, () => resolve("timeout"));
        });
        const outcome = await Promise.race([answered, timedOut]);
        timer?.cancel();
        if (outcome !== "timeout") return outcome;
      }
      throw unavailable();
    } finally {
      timer?.cancel();
      this.#pending.delete(requestId);
    }
  }

  /**
   * Sends every request in flight except `except` once more, as part of the attempt under way
   * (sendAttempt with its current number; its timer runs on): for a client that replaced its
   * connection, whose queued envelopes went with the old one.
   */
  resendAll(except?: string): void {
    for (const [id, e] of this.#pending) {
      if (id === except || e.attempt === 0) continue;
      e.sent++;
      e.send(e.attempt);
    }
  }

  /** Rejects every request in flight (the client is closing). */
  rejectAll(error: (requestId: string) => Error): void {
    for (const [id, p] of this.#pending) p.reject(error(id));
    this.#pending.clear();
  }
}
