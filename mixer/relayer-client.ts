/**
 * The household's side of the relayer (mixer/relayer.ts): plain HTTP JSON to a URL, so that the
 * relayer can sit behind anything that speaks HTTP (an onion service, a reverse proxy).
 *
 *   const relayer = new RelayerClient({ url: "http://127.0.0.1:41234", agent });
 *   const status = await relayer.status();             // its address (bind it in the proof), pools, fees
 *   const r = await relayer.relay({ mixer, allowance, gasDrop: true });
 *   if (r.ok) r.transactions; else r.code;             // e.g. "FEE_TOO_LOW", r.field "mixer.fee"
 *
 * How the bytes leave: with `transport` and `identity` (what agents use), every request asks the
 * household's Transport for its route: in direct mode an agent bound to the household's loopback
 * source address, in Tor mode the relayer's onion address (or an exit) over a SOCKS agent, a relay
 * on the circuit of the pseudonym it pays (its recipient), as that pseudonym's JSON-RPC requests.
 * A fixed `agent` instead serves tests and tools. relay() never throws for an answer it can read: a
 * refusal is a value; an unreachable relayer is `{ ok: false, code: "UNREACHABLE" }`.
 */
import * as http from "node:http";
import * as https from "node:https";
import { getAddress } from "ethers";
import type { Transport } from "../agents/interfaces";
import { CIRCUITS } from "../circuits/instances";
import { check, PetraError } from "../common/errors";
import {
  type Allowance,
  type AllowanceParts,
  allowanceCommitment,
  allowanceNullifierHash,
  allowanceWithdrawInputs,
} from "./allowance";
import type { MerkleTree } from "./merkle-tree";
import { type MixerNote, noteCommitment, noteNullifierHash } from "./note";
import type { Poseidon } from "./poseidon";
import type { Prover } from "./prover";
import { withdrawalPublicSignals } from "./public-signals";
import {
  type AllowanceWithdrawalWire,
  allowanceWithdrawalWire,
  type MixerWithdrawalWire,
  mixerWithdrawalWire,
  type RelayerErrorCode,
  type RelayerStatus,
  type RelayRequest,
  type RelayResult,
} from "./relayer-protocol";

export interface RelayerClientOptions {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** How connections leave the household, for every request. Default: Node's global agent. Not with `transport`. */
  agent?: http.Agent;
  /** Route every request through this transport as `identity` (see the file comment). */
  transport?: Pick<Transport, "httpRoute" | "kind">;
  /** Who the requests leave as (the household id); required with `transport`. */
  identity?: string;
  /** Per request, ms; a relay waits for its receipts. Default 120 000. */
  timeoutMs?: number;
  /**
   * How long a request whose connection never opened is tried again (backoff 250 ms doubling to
   * 2 s), ms from its first failure. Only then: nothing reached the relayer, so even a relay is
   * safe to repeat. Over Tor that is a circuit that could not be built or an onion service being
   * republished (a relayed withdrawal would otherwise fail); a request that broke after it was
   * sent is never repeated. Default 60 000 with a Tor transport, else 0.
   */
  connectRetryMs?: number;
}

export type RelayRefused = {
  ok: false;
  /** 0 when no HTTP answer came. */
  httpStatus: number;
  code: RelayerErrorCode | "UNREACHABLE" | "BAD_ANSWER";
  message: string;
  field?: string;
};
export type RelayOutcome = RelayResult | RelayRefused;

export interface RawAnswer {
  httpStatus: number;
  body: unknown;
}

export class RelayerClient {
  readonly url: string;
  readonly #agent?: http.Agent;
  readonly #transport?: Pick<Transport, "httpRoute" | "kind">;
  readonly #identity: string;
  readonly #timeoutMs: number;
  readonly #connectRetryMs: number;

  constructor(opts: RelayerClientOptions) {
    check(/^https?:\/\/[^/]+/.test(opts.url ?? ""), "url", `must be an http(s) URL, got "${opts.url}"`);
    check(opts.timeoutMs === undefined || opts.timeoutMs > 0, "timeoutMs", "must be > 0");
    check(opts.agent === undefined || opts.transport === undefined, "agent", "give an agent or a transport, not both");
    check(
      opts.transport === undefined || (typeof opts.identity === "string" && opts.identity.length > 0),
      "identity",
      "is required with a transport",
    );
    this.url = opts.url.replace(/\/+$/, "");
    this.#agent = opts.agent;
    this.#transport = opts.transport;
    this.#identity = opts.identity ?? "";
    check(
      opts.connectRetryMs === undefined || (Number.isFinite(opts.connectRetryMs) && opts.connectRetryMs >= 0),
      "connectRetryMs",
      "must be >= 0",
    );
    this.#connectRetryMs = opts.connectRetryMs ?? (opts.transport?.kind === "tor" ? 60_000 : 0);
    this.#timeoutMs = opts.timeoutMs ?? 120_000;
  }

  /** The relayer's address, pools, vaults and fees. Throws PetraError when it cannot be had. */
  async status(): Promise<RelayerStatus> {
    let answer: RawAnswer;
    try {
      answer = await this.request("GET", "/v1/status");
    } catch (e) {
      throw new PetraError("PROCESS_FAILED", `relayer at ${this.url} unreachable: ${(e as Error).message}`, {
        url: this.url,
      });
    }
    const b = answer.body as RelayerStatus | { ok: false; error: { message: string } };
    if (answer.httpStatus !== 200 || !b || b.ok !== true) {
      throw new PetraError("PROCESS_FAILED", `relayer at ${this.url} answered ${answer.httpStatus} to /v1/status`, {
        url: this.url,
        body: answer.body,
      });
    }
    return b;
  }

  async relay(request: RelayRequest): Promise<RelayOutcome> {
    let answer: RawAnswer;
    try {
      answer = await this.request("POST", "/v1/relay", JSON.stringify(request), relaySubject(request));
    } catch (e) {
      return { ok: false, httpStatus: 0, code: "UNREACHABLE", message: (e as Error).message };
    }
    const b = answer.body as
      | RelayResult
      | { ok: false; error: { code: RelayerErrorCode; message: string; field?: string } };
    if (answer.httpStatus === 200 && b && (b as RelayResult).ok === true) return b as RelayResult;
    const err = (b as { error?: { code?: RelayerErrorCode; message?: string; field?: string } })?.error;
    if (!err?.code) {
      return {
        ok: false,
        httpStatus: answer.httpStatus,
        code: "BAD_ANSWER",
        message: `unreadable answer: ${JSON.stringify(answer.body).slice(0, 200)}`,
      };
    }
    return {
      ok: false,
      httpStatus: answer.httpStatus,
      code: err.code,
      message: err.message ?? "",
      ...(err.field ? { field: err.field } : {}),
    };
  }

  /**
   * One HTTP exchange with any body (tests send malformed ones). Rejects only when no answer came.
   * `subject`: the address the request concerns, whose circuit it takes in Tor mode.
   */
  async request(method: "GET" | "POST", path: string, body?: string, subject?: string): Promise<RawAnswer> {
    let firstFailureAt: number | undefined;
    for (let backoffMs = 250; ; backoffMs = Math.min(2 * backoffMs, 2000)) {
      try {
        return await this.#exchange(method, path, body, subject);
      } catch (e) {
        const notSent = (e as { notSent?: boolean }).notSent === true;
        const now = performance.now();
        firstFailureAt ??= now;
        if (!notSent || now - firstFailureAt + backoffMs > this.#connectRetryMs) throw e;
        await new Promise((r) => setTimeout(r, backoffMs));
      }
    }
  }

  /** One attempt; its error carries `notSent: true` when the connection never opened. */
  #exchange(method: "GET" | "POST", path: string, body?: string, subject?: string): Promise<RawAnswer> {
    // Asked per attempt: over Tor a retry then goes out on whatever circuit the transport gives now.
    const route = this.#transport?.httpRoute(this.url, this.#identity, subject);
    const url = new URL(path, `${(route?.url ?? this.url).replace(/\/+$/, "")}/`);
    const lib = url.protocol === "https:" ? https : http;
    return new Promise<RawAnswer>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method,
          agent: route?.agent ?? this.#agent,
          timeout: this.#timeoutMs,
          headers:
            body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // keep the text: the caller reports it as an unreadable answer
            }
            resolve({ httpStatus: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      // A SOCKS agent hands the request a socket only once its proxy connected; a direct connection
      // refused never carried a byte either.
      let socketAssigned = false;
      req.on("socket", () => {
        socketAssigned = true;
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on("error", (e: NodeJS.ErrnoException) => {
        if (!socketAssigned || e.code === "ECONNREFUSED") Object.assign(e, { notSent: true });
        reject(e);
      });
      req.end(body);
    });
  }
}

/** The pseudonym a relay request pays out to: the mixer withdrawal's recipient, if it reads as an address. */
function relaySubject(request: RelayRequest): string | undefined {
  const r = (request as { mixer?: { recipient?: unknown } })?.mixer?.recipient;
  return typeof r === "string" && /^0x[0-9a-fA-F]{40}$/.test(r) ? r : undefined;
}

/** Proves the withdrawal of `note` from `tree` (the pool's, synced from its events) in the relayer's wire form. */
export async function proveMixerWithdrawal(o: {
  prover: Prover;
  poseidon: Poseidon;
  tree: MerkleTree;
  note: MixerNote;
  pool: string;
  recipient: string;
  relayer: string;
  fee: bigint;
}): Promise<MixerWithdrawalWire> {
  const index = o.tree.indexOf(noteCommitment(o.poseidon, o.note));
  check(index >= 0, "note", "its commitment is not in the tree (not deposited, or the tree is stale)");
  const p = o.tree.proof(index);
  const pub = {
    root: p.root,
    nullifierHash: noteNullifierHash(o.poseidon, o.note),
    recipient: getAddress(o.recipient),
    relayer: getAddress(o.relayer),
    fee: o.fee,
  };
  // The public inputs by the circuit's own names, from the one function that knows the layout.
  const circuit = CIRCUITS["mixer-withdraw"];
  const signals = withdrawalPublicSignals("mixer-withdraw", pub);
  const publicInputs = Object.fromEntries(
    circuit.publicInputs.map((name, i) => [name, signals[circuit.publicOutputs.length + i] as bigint]),
  );
  const proved = await o.prover.prove("mixer-withdraw", {
    ...publicInputs,
    nullifier: o.note.nullifier,
    secret: o.note.secret,
    depth: p.depth,
    leafIndex: p.leafIndex,
    siblings: p.siblings,
  });
  return mixerWithdrawalWire(o.pool, proved.proof, pub);
}

/**
 * Proves spending `allowance` (a leaf of `tree`, the vault's) on `request` to `recipient`, leaving
 * `parts` (from splitAllowance), in the relayer's wire form.
 */
export async function proveAllowanceWithdrawal(o: {
  prover: Prover;
  poseidon: Poseidon;
  tree: MerkleTree;
  allowance: Allowance;
  parts: AllowanceParts;
  vault: string;
  request: { powerW: bigint; start: bigint; end: bigint };
  recipient: string;
}): Promise<AllowanceWithdrawalWire> {
  const index = o.tree.indexOf(allowanceCommitment(o.poseidon, o.allowance));
  check(index >= 0, "allowance", "its commitment is not in the tree (not issued, or the tree is stale)");
  const p = o.tree.proof(index);
  const nullifierHash = allowanceNullifierHash(o.poseidon, o.allowance);
  const recipient = getAddress(o.recipient);
  const request = { ...o.request, recipient: BigInt(recipient) };
  const proved = await o.prover.prove(
    "allowance-withdraw",
    allowanceWithdrawInputs(o.allowance, p, request, o.parts, nullifierHash, o.poseidon),
  );
  const newCommitments = o.parts.map((x) => allowanceCommitment(o.poseidon, x)) as unknown as readonly [
    bigint,
    bigint,
    bigint,
  ];
  return allowanceWithdrawalWire(o.vault, proved.proof, {
    root: p.root,
    nullifierHash,
    ...o.request,
    recipient,
    newCommitments,
  });
}
