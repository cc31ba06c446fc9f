/**
 * A TCP proxy in front of an endpoint (the JSON-RPC node) that records, per connection, the
 * source address, port, times and byte counts: what an adversary operating or watching the node
 * sees at the network level. The log is JSONL so the network-level attack reads it without
 * importing anything from here. In direct mode each household leaves from its own 127.0.0.x, so
 * the log links requests to households; in Tor mode it shows only the exits' addresses.
 *
 * The same proxy sits in front of the zk relayer (`protocol: "relayer"`, records labelled
 * `observer: "relayer"`, in the same log): what the relayer's operator sees is the source of each
 * request and the pseudonym it pays out to.
 *
 * Times come from an injected clock (wall time by default: in live mode the observation IS the
 * wall clock) so runs can be replayed.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { Transaction } from "ethers";
import { check } from "../common/errors";
import { pipeWithDelay } from "./delay-proxy";

export interface ObservedConnection {
  kind: "connection";
  /** Where the observer sits, e.g. "rpc". */
  observer: string;
  sourceAddress: string;
  sourcePort: number;
  target: string;
  openedAtMs: number;
  closedAtMs: number;
  bytesFromSource: number;
  bytesToSource: number;
}

/**
 * A transaction the observer saw submitted (eth_sendRawTransaction), with the connection it came
 * from. The operator of an RPC node sees the plaintext JSON-RPC, so this is what it can log; over
 * Tor the source is an exit (here 127.0.0.1), not the household.
 *
 * At the relayer (`observer: "relayer"`) it is a transaction the relayer sent for a request from
 * that source, and `txFrom` is the address the request acted for (the withdrawal's recipient, a
 * pseudonym), not the relayer's own account that signs it on chain: the link a relayer operator
 * can draw, in the form the network-level attack already reads (attacks/heuristic-network.ts).
 */
export interface ObservedTransaction {
  kind: "transaction";
  observer: string;
  sourceAddress: string;
  sourcePort: number;
  atMs: number;
  txHash: string;
  txFrom: string;
}

export type ObserverLogRecord = ObservedConnection | ObservedTransaction;

export interface NetworkObserverOptions {
  /** Label written into every record. Default "rpc". */
  name?: string;
  /** Default "127.0.0.1", port 0 (a free one). */
  listenHost?: string;
  listenPort?: number;
  /** Default "127.0.0.1". */
  targetHost?: string;
  targetPort: number;
  /** JSONL file to append records to; without it records are only kept in memory. */
  logPath?: string;
  /**
   * What the proxied service speaks, so the observer knows what to decode: "json-rpc" (default;
   * eth_sendRawTransaction) or "relayer" (POST /v1/relay: the recipient, and the transactions the
   * answer names).
   */
  protocol?: "json-rpc" | "relayer";
  /** One-way delay per chunk and direction, as DelayProxy (0: none). Default 0. */
  delayMs?: number;
  /** Milliseconds since the epoch. Default Date.now. */
  now?: () => number;
}

export class NetworkObserver {
  readonly records: ObservedConnection[] = [];
  readonly transactions: ObservedTransaction[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** The URL clients should use instead of the target's, e.g. "http://127.0.0.1:PORT". */
  url(scheme = "http"): string {
    return `${scheme}://${this.host}:${this.port}`;
  }

  static async start(options: NetworkObserverOptions): Promise<NetworkObserver> {
    const listenHost = options.listenHost ?? "127.0.0.1";
    const targetHost = options.targetHost ?? "127.0.0.1";
    check(listenHost.startsWith("127."), "listenHost", "must be a loopback address", { listenHost });
    check(targetHost.startsWith("127."), "targetHost", "must be a loopback address", { targetHost });
    check(Number.isInteger(options.targetPort) && options.targetPort > 0, "targetPort", "must be a port number");
    const now = options.now ?? Date.now;
    const name = options.name ?? "rpc";
    const protocol = options.protocol ?? "json-rpc";
    check(protocol === "json-rpc" || protocol === "relayer", "protocol", `must be "json-rpc" or "relayer"`, {
      protocol,
    });
    const target = `${targetHost}:${options.targetPort}`;
    if (options.logPath) mkdirSync(dirname(options.logPath), { recursive: true });
    let observer: NetworkObserver | undefined;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      const record: ObservedConnection = {
        kind: "connection",
        observer: name,
        sourceAddress: (client.remoteAddress ?? "").replace(/^::ffff:/, ""),
        sourcePort: client.remotePort ?? 0,
        target,
        openedAtMs: now(),
        closedAtMs: 0,
        bytesFromSource: 0,
        bytesToSource: 0,
      };
      const upstream = connect({ host: targetHost, port: options.targetPort, allowHalfOpen: true, noDelay: true });
      observer?.track(client);
      observer?.track(upstream);
      const delayMs = options.delayMs ?? 0;
      pipeWithDelay(client, upstream, delayMs, (n) => {
        record.bytesFromSource += n;
      });
      const requests = new HttpRequestReader();
      const seen = (tx: { txHash: string; txFrom: string }, atMs: number) => {
        const r: ObservedTransaction = {
          kind: "transaction",
          observer: name,
          sourceAddress: record.sourceAddress,
          sourcePort: record.sourcePort,
          atMs,
          ...tx,
        };
        observer?.transactions.push(r);
        if (options.logPath) appendFileSync(options.logPath, `${JSON.stringify(r)}\n`);
      };
      if (protocol === "relayer") {
        // HTTP/1.1 answers come back in request order on a connection, so a queue pairs them.
        const pending: { recipient: string | undefined; atMs: number }[] = [];
        const responses = new HttpRequestReader();
        client.on("data", (chunk: Buffer) => {
          for (const body of requests.push(chunk)) pending.push({ recipient: relayRecipient(body), atMs: now() });
        });
        upstream.on("data", (chunk: Buffer) => {
          for (const body of responses.push(chunk)) {
            const request = pending.shift();
            if (!request?.recipient) continue;
            for (const txHash of relayedTransactions(body)) seen({ txHash, txFrom: request.recipient }, request.atMs);
          }
        });
      } else {
        client.on("data", (chunk: Buffer) => {
          for (const body of requests.push(chunk)) for (const tx of submittedTransactions(body)) seen(tx, now());
        });
      }
      pipeWithDelay(upstream, client, delayMs, (n) => {
        record.bytesToSource += n;
      });
      client.once("close", () => {
        record.closedAtMs = now();
        observer?.records.push(record);
        // Synchronous append: a record must be on disk before anyone reads the log after close().
        if (options.logPath) appendFileSync(options.logPath, `${JSON.stringify(record)}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.listenPort ?? 0, listenHost, () => resolve());
    });
    observer = new NetworkObserver(server, listenHost, (server.address() as AddressInfo).port);
    return observer;
  }

  /** Distinct source addresses seen so far (closed connections only). */
  sourceAddresses(): string[] {
    return [...new Set(this.records.map((r) => r.sourceAddress))].sort();
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
  }

  /** Closes open connections (recording them) and stops listening. */
  async close(): Promise<void> {
    const closing = [...this.sockets].map(
      (s) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r()))),
    );
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Reads an observer log (JSONL) back, e.g. for the network-level attack. */
export function readObserverLog(text: string): ObserverLogRecord[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as ObserverLogRecord);
}

/** The recipient of a relay request body (its mixer withdrawal's), if it is one. */
export function relayRecipient(body: string): string | undefined {
  try {
    const r = (JSON.parse(body) as { mixer?: { recipient?: unknown } })?.mixer?.recipient;
    return typeof r === "string" && /^0x[0-9a-fA-F]{40}$/.test(r) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The hashes of the transactions a relayer's answer reports as sent ([] for a refusal or anything else). */
export function relayedTransactions(body: string): string[] {
  try {
    const a = JSON.parse(body) as { ok?: unknown; transactions?: unknown };
    if (a?.ok !== true || !Array.isArray(a.transactions)) return [];
    return a.transactions
      .map((t) => (t as { hash?: unknown })?.hash)
      .filter((h): h is string => typeof h === "string" && /^0x[0-9a-fA-F]{64}$/.test(h));
  } catch {
    return [];
  }
}

/**
 * Splits an HTTP/1.1 byte stream into message bodies: requests as ethers and every JSON-RPC client
 * send them, or a server's answers. Content-Length and chunked framing (no trailers); a message
 * with neither has no body, which is right for requests and for the answers this observer reads.
 * Keeps at most one partial message buffered.
 */
export class HttpRequestReader {
  #buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const bodies: string[] = [];
    for (;;) {
      const headerEnd = this.#buffer.indexOf("\r\n\r\n");
      if (headerEnd < 0) break;
      const headers = this.#buffer.subarray(0, headerEnd).toString("latin1");
      const start = headerEnd + 4;
      if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(headers)) {
        const parsed = dechunk(this.#buffer, start);
        if (!parsed) break;
        bodies.push(parsed.body.toString("utf8"));
        this.#buffer = this.#buffer.subarray(parsed.end);
        continue;
      }
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
      const total = start + (m ? Number(m[1]) : 0);
      if (this.#buffer.length < total) break;
      bodies.push(this.#buffer.subarray(start, total).toString("utf8"));
      this.#buffer = this.#buffer.subarray(total);
    }
    // A stream that is not HTTP must not grow the buffer without bound.
    if (this.#buffer.length > 1 << 20) this.#buffer = Buffer.alloc(0);
    return bodies;
  }
}

/** A chunked body starting at `from`: its bytes and where the message ends, or undefined while incomplete. */
function dechunk(buffer: Buffer, from: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let at = from;
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(buffer.subarray(at, lineEnd).toString("latin1").split(";")[0] as string, 16);
    // Not chunked after all: give up on the stream's framing rather than misread it.
    if (!Number.isFinite(size)) return { body: Buffer.alloc(0), end: buffer.length };
    const dataEnd = lineEnd + 2 + size;
    if (buffer.length < dataEnd + 2) return undefined;
    if (size === 0) return { body: Buffer.concat(parts), end: dataEnd + 2 };
    parts.push(buffer.subarray(lineEnd + 2, dataEnd));
    at = dataEnd + 2;
  }
}

/** The transactions a JSON-RPC request body submits (single or batch), decoded; [] for anything else. */
export function submittedTransactions(body: string): Array<{ txHash: string; txFrom: string }> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return [];
  }
  const calls = Array.isArray(json) ? json : [json];
  const out: Array<{ txHash: string; txFrom: string }> = [];
  for (const c of calls) {
    const call = c as { method?: unknown; params?: unknown };
    if (call?.method !== "eth_sendRawTransaction" || !Array.isArray(call.params)) continue;
    try {
      const tx = Transaction.from(String(call.params[0]));
      if (tx.hash && tx.from) out.push({ txHash: tx.hash, txFrom: tx.from });
    } catch {
      // not a transaction ethers can decode: nothing to record
    }
  }
  return out;
}
