/**
 * Transport through a Tor client: every identity (pseudonym) gets its own circuit.
 *
 * Isolation works through Tor's IsolateSOCKSAuth (on by default on every SocksPort): streams
 * whose SOCKS username/password differ never share a circuit. The username is a hash of the
 * identity and a per-identity epoch, so the local tor never sees the pseudonym itself and
 * newCircuit(identity) moves one identity to a fresh circuit without disturbing the others
 * (NEWNYM, by contrast, retires every circuit the client has).
 *
 * ZeroMQ: zmqConnect gives each socket a SocksTunnel (agents/tor/socks-tunnel.ts), a local port
 * whose connections it carries through the SOCKS port with the identity's credentials, hostnames
 * unresolved ("tcp://<x>.onion:port" works); the socket connects to that port in plain TCP. Not
 * libzmq's own SOCKS client (ZMQ_SOCKS_PROXY with the DRAFT ZMQ_SOCKS_USERNAME): closing a socket
 * while it waits to reconnect after a refused SOCKS CONNECT aborts the process in libzmq 4.3.5, and
 * its CONNECT has no timeout. `Transport.zmqEndpoint` alone is not enough in Tor mode: use zmqConnect.
 *
 * One circuit per pseudonym: an agent builds one provider for its household, but the requests on it
 * belong to different pseudonyms. With `isolation: "address"` each request goes over the circuit of
 * the Ethereum address it concerns (the sender of eth_sendRawTransaction, the address of
 * eth_getTransactionCount / eth_getBalance, the `from` of eth_call / eth_estimateGas, the sender of a
 * transaction whose receipt is polled); requests that concern no address (log filters, block
 * numbers, fee data) use the household's own circuit. So an observer at the node sees each
 * pseudonym arrive on a stream of its own, and a keep-alive stream never carries two pseudonyms.
 *
 * Faults: a request whose stream broke (a relay on its circuit died, an onion service restarted)
 * is retried with backoff, with new SOCKS credentials and so on a new circuit, while `retryBudgetMs` lasts,
 * unless its effect on the node cannot be repeated safely (eth_getFilterChanges would lose the logs
 * of the lost answer; LiveChain recreates its filter instead). A retried eth_sendRawTransaction first
 * asks the node whether it already has the transaction (its hash is known locally), so a transaction
 * the node got before the answer was lost is neither sent twice nor reported as failed. A ZeroMQ
 * connection whose SOCKS CONNECT tor leaves unanswered for `zmqConnectTimeoutMs` is closed (libzmq
 * reconnects) and its identity takes new credentials, so the reconnect gets circuits of its own
 * (see zmqConnect). stats() counts all of it, for the fault inventory.
 */
import { createHash } from "node:crypto";
import {
  type FetchCancelSignal,
  type FetchGetUrlFunc,
  FetchRequest,
  type GetUrlResponse,
  type JsonRpcApiProviderOptions,
  JsonRpcProvider,
  Network,
  Transaction,
} from "ethers";
import { SocksProxyAgent } from "socks-proxy-agent";
import { z } from "zod";
import { check, PetraError } from "../common/errors";
import type { HttpRoute, JsonRpcProviderOptions, Transport, ZmqConnectable, ZmqConnectOptions } from "./interfaces";
import { SocksTunnel, type SocksTunnelStats } from "./tor/socks-tunnel";
import { TorControl } from "./tor/tor-control";
import type { TorClientEndpoint } from "./tor/tor-network";

export interface TorTransportOptions {
  /** The Tor client to use: from TorNetwork.clients or useExistingTor(). */
  client: TorClientEndpoint;
  /**
   * Rewrites of plain endpoints to onion ones, by prefix: { "http://127.0.0.1:8545":
   * "http://<x>.onion:80", "tcp://127.0.0.1:5555": "tcp://<y>.onion:5555" }. Unlisted endpoints
   * leave through an exit.
   */
  onionRoutes?: Record<string, string>;
  /** Mixed into the SOCKS username so two runs do not share circuits by accident. Default "petra". */
  isolationSalt?: string;
  /** Keep HTTP connections (Tor streams) open between requests. Default true (saves a stream setup per RPC). */
  keepAlive?: boolean;
  /** Skip eth_chainId detection through Tor when the chain id is known (per-call options win). */
  chainId?: number;
  /** Passed to every JsonRpcProvider; batchMaxCount 1 and cacheTimeout -1 unless overridden. */
  providerOptions?: JsonRpcApiProviderOptions;
  /**
   * "identity" (default): every request of a provider uses the provider's identity's circuit.
   * "address": a request that concerns an Ethereum address uses a circuit of its own for that
   * address under the provider's identity (one circuit per pseudonym; see the file comment).
   */
  isolation?: TorIsolation;
  /**
   * How long a JSON-RPC request whose stream broke is retried (backoff 250 ms doubling to 2 s),
   * ms from its first failure. Default 0: no retry, the error goes to the caller.
   */
  retryBudgetMs?: number;
  /**
   * How long a ZeroMQ connection's SOCKS CONNECT may wait for tor's answer before it is given up
   * and its identity takes new credentials, ms. An onion connection is answered in 1-5 s on the
   * lab's network (more with hop delays); tor itself gives up after its SocksTimeout (30 s in the
   * private network, 2 min by default). Default 15 000.
   */
  zmqConnectTimeoutMs?: number;
}

export type TorIsolation = "identity" | "address";

/**
 * A TorTransport as a process config holds it (agents/prosumer-process.ts): the live runner writes
 * one per household, the household process builds its transport from it.
 */
export const torTransportConfigSchema = z
  .object({
    kind: z.literal("tor"),
    socksHost: z.string().regex(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, "must be a loopback address"),
    socksPort: z.number().int().min(1).max(65535),
    /** Control port of the Tor client, if the household may use it (NEWNYM); usually absent. */
    controlPort: z.number().int().min(1).max(65535).optional(),
    onionRoutes: z.record(z.string(), z.string()).default({}),
    isolationSalt: z.string().min(1),
    isolation: z.enum(["identity", "address"]).default("address"),
    retryBudgetMs: z.number().int().min(0).default(0),
    /** See TorTransportOptions.zmqConnectTimeoutMs. */
    zmqConnectTimeoutMs: z.number().int().positive().optional(),
    /** Where the process writes stats() as JSON when it ends (the runner's fault inventory reads it). */
    statsFile: z.string().min(1).optional(),
  })
  .strict();
export type TorTransportConfig = z.input<typeof torTransportConfigSchema>;

/** The TorTransport a (parsed) config describes. */
export function torTransportFromConfig(
  config: z.output<typeof torTransportConfigSchema>,
  name: string,
  chainId?: number,
): TorTransport {
  return new TorTransport({
    client: {
      name,
      socksHost: config.socksHost,
      socksPort: config.socksPort,
      ...(config.controlPort !== undefined ? { control: { host: config.socksHost, port: config.controlPort } } : {}),
    },
    onionRoutes: config.onionRoutes,
    isolationSalt: config.isolationSalt,
    isolation: config.isolation,
    retryBudgetMs: config.retryBudgetMs,
    ...(config.zmqConnectTimeoutMs !== undefined ? { zmqConnectTimeoutMs: config.zmqConnectTimeoutMs } : {}),
    ...(chainId !== undefined ? { chainId } : {}),
  });
}

/** What the transport saw go wrong, for the fault inventory. */
export interface TorTransportStats {
  /** JSON-RPC requests (first attempts). */
  requests: number;
  /** Attempts that failed below HTTP (stream broken, SOCKS refused, timeout). */
  failedAttempts: number;
  /** Requests that failed at least once and then succeeded on a retry. */
  recovered: number;
  /** Requests whose error reached the caller after failing (retry budget spent, or not retryable). */
  gaveUp: number;
  /** Requests that had failed and were still being retried when the stats were read. */
  retrying: number;
  /** Retried eth_sendRawTransaction the node already had: answered with its hash instead of re-sending. */
  rawTransactionsAlreadyKnown: number;
  /** Per method: failed attempts, recovered and given-up requests. */
  byMethod: Record<string, { failedAttempts: number; recovered: number; gaveUp: number }>;
  /** Distinct circuits asked for (SOCKS usernames), i.e. identities and pseudonyms that sent something. */
  circuits: number;
  /** The last few errors, "method: message" (ZeroMQ connections: "zmq host:port: ..."). */
  lastErrors: string[];
  /** ZeroMQ connections' SOCKS CONNECTs: made, answered, and given up (timeouts), refused or broken; tunnels open. */
  zmq: SocksTunnelStats & { tunnelsOpen: number };
}

/** JSON-RPC methods whose request changes what the node answers next: retrying could lose data. */
const NOT_RETRIED = new Set([
  "eth_getFilterChanges",
  "eth_newFilter",
  "eth_newBlockFilter",
  "eth_newPendingTransactionFilter",
]);

interface RpcCall {
  id: unknown;
  method: string;
  params: unknown[];
}

function parseCall(body: Uint8Array | null): RpcCall | undefined {
  if (!body) return undefined;
  try {
    const json = JSON.parse(Buffer.from(body).toString("utf8")) as { id?: unknown; method?: unknown; params?: unknown };
    if (typeof json?.method !== "string") return undefined;
    return { id: json.id, method: json.method, params: Array.isArray(json.params) ? json.params : [] };
  } catch {
    return undefined;
  }
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * The Ethereum address a JSON-RPC call concerns, if any: whose transaction it submits or polls,
 * whose nonce or balance it reads, whose call it simulates. `senders` maps transaction hashes
 * (lower case) to their senders and is filled from eth_sendRawTransaction.
 */
export function rpcSubject(
  call: { method: string; params: unknown[] },
  senders?: Map<string, string>,
): string | undefined {
  const [p0] = call.params;
  switch (call.method) {
    case "eth_sendRawTransaction": {
      try {
        const tx = Transaction.from(String(p0));
        if (!tx.from || !tx.hash) return undefined;
        senders?.set(tx.hash.toLowerCase(), tx.from.toLowerCase());
        return tx.from.toLowerCase();
      } catch {
        return undefined;
      }
    }
    case "eth_getTransactionReceipt":
    case "eth_getTransactionByHash":
      return typeof p0 === "string" ? senders?.get(p0.toLowerCase()) : undefined;
    case "eth_getTransactionCount":
    case "eth_getBalance":
      return typeof p0 === "string" && ADDRESS.test(p0) ? p0.toLowerCase() : undefined;
    case "eth_call":
    case "eth_estimateGas":
    case "eth_createAccessList": {
      const from = (p0 as { from?: unknown } | undefined)?.from;
      return typeof from === "string" && ADDRESS.test(from) ? from.toLowerCase() : undefined;
    }
    default:
      return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class TorTransport implements Transport {
  readonly kind = "tor" as const;
  private readonly epochs = new Map<string, number>();
  private readonly agents = new Map<string, SocksProxyAgent>();
  private readonly providers = new Set<JsonRpcProvider>();
  private control: TorControl | undefined;
  /** Transaction hash -> sender (lower case), from eth_sendRawTransaction; bounded. */
  private readonly senders = new Map<string, string>();
  private readonly usernames = new Set<string>();
  private readonly tunnels = new Set<SocksTunnel>();
  /** What tunnels closed so far carried (stats() adds the open ones). */
  private readonly closedTunnels: SocksTunnelStats = { attempts: 0, connected: 0, timeouts: 0, refused: 0, broken: 0 };
  private closed = false;
  private readonly counters: Omit<TorTransportStats, "zmq"> = {
    requests: 0,
    failedAttempts: 0,
    recovered: 0,
    gaveUp: 0,
    retrying: 0,
    rawTransactionsAlreadyKnown: 0,
    byMethod: {},
    circuits: 0,
    lastErrors: [],
  };

  constructor(readonly options: TorTransportOptions) {
    check(options.client.socksPort > 0, "client.socksPort", "must be a port");
    check(
      options.isolation === undefined || options.isolation === "identity" || options.isolation === "address",
      "isolation",
      'must be "identity" or "address"',
    );
    check((options.retryBudgetMs ?? 0) >= 0, "retryBudgetMs", "must be >= 0");
    check(
      options.zmqConnectTimeoutMs === undefined ||
        (Number.isFinite(options.zmqConnectTimeoutMs) && options.zmqConnectTimeoutMs > 0),
      "zmqConnectTimeoutMs",
      `must be a number > 0, got ${options.zmqConnectTimeoutMs}`,
    );
  }

  /** Counters of requests, failures and retries so far (a copy). */
  stats(): TorTransportStats {
    return {
      ...this.counters,
      byMethod: Object.fromEntries(Object.entries(this.counters.byMethod).map(([m, c]) => [m, { ...c }])),
      circuits: this.usernames.size,
      lastErrors: [...this.counters.lastErrors],
      zmq: this.zmqStats(),
    };
  }

  private zmqStats(): TorTransportStats["zmq"] {
    const sum = { ...this.closedTunnels };
    for (const t of this.tunnels) {
      const s = t.stats();
      for (const k of Object.keys(sum) as (keyof SocksTunnelStats)[]) sum[k] += s[k];
    }
    return { ...sum, tunnelsOpen: this.tunnels.size };
  }

  /** The identity whose circuit `call` goes over, for a provider of `identity`. */
  circuitIdentity(identity: string, call: { method: string; params: unknown[] } | undefined): string {
    if (this.options.isolation !== "address" || !call) return identity;
    const subject = rpcSubject(call, this.senders);
    if (this.senders.size > 10_000) this.senders.delete(this.senders.keys().next().value as string);
    return subject ? `${identity}/${subject}` : identity;
  }

  /** The SOCKS username identity's traffic uses now (changes after newCircuit(identity)). */
  socksUsername(identity: string): string {
    check(identity.length > 0, "identity", "must be non-empty");
    const epoch = this.epochs.get(identity) ?? 0;
    const salt = this.options.isolationSalt ?? "petra";
    return `p-${createHash("sha256").update(`${salt}\0${identity}\0${epoch}`).digest("hex").slice(0, 24)}`;
  }

  /** Where the endpoint goes: its onion rewrite if one is configured, else itself (via an exit). */
  route(endpoint: string): string {
    for (const [from, to] of Object.entries(this.options.onionRoutes ?? {})) {
      // A whole host:port, not a prefix of a longer port: "http://127.0.0.1:4123" must not take
      // "http://127.0.0.1:41234" along.
      const rest = endpoint.slice(from.length);
      if (endpoint.startsWith(from) && (rest === "" || rest.startsWith("/") || from.endsWith("/"))) return to + rest;
    }
    return endpoint;
  }

  jsonRpcProvider(url: string, identity: string, options: JsonRpcProviderOptions = {}): JsonRpcProvider {
    const request = new FetchRequest(this.route(url));
    // The agent is looked up per request, so newCircuit(identity) affects providers created earlier too.
    const getUrl: FetchGetUrlFunc = (req, signal) => this.fetch(req, signal, identity);
    request.getUrlFunc = getUrl;
    const chainId = options.chainId ?? this.options.chainId;
    const network = chainId !== undefined ? Network.from(chainId) : undefined;
    // ethers merges options with Object.assign, so an undefined key would erase its default.
    // Batching and the 250 ms cache hurt against a local node (TOOLCHAIN.md), more so over Tor.
    const providerOptions: JsonRpcApiProviderOptions = { batchMaxCount: 1, cacheTimeout: -1 };
    if (network) providerOptions.staticNetwork = network;
    if (options.pollingIntervalMs !== undefined) providerOptions.pollingInterval = options.pollingIntervalMs;
    const provider = new JsonRpcProvider(request, network, { ...providerOptions, ...this.options.providerOptions });
    this.providers.add(provider);
    return provider;
  }

  /**
   * The endpoint to connect to (its onion rewrite, if any). Not sufficient on its own in Tor mode:
   * connect through zmqConnect.
   */
  zmqEndpoint(endpoint: string, _identity: string): string {
    check(endpoint.startsWith("tcp://"), "endpoint", "only tcp:// endpoints can go through Tor", { endpoint });
    return this.route(endpoint);
  }

  /**
   * The routed URL (its onion rewrite, if any) and a SOCKS agent on the circuit of `identity`, or,
   * with isolation "address" and a `subject`, on the circuit that address's JSON-RPC requests use:
   * a relayer that also watches the node through the same exit sees one pseudonym per stream.
   * Unlike JSON-RPC requests these are not retried here: a relay is not idempotent at the HTTP
   * level, its caller decides.
   */
  httpRoute(url: string, identity: string, subject?: string): HttpRoute {
    check(/^https?:\/\//.test(url), "url", `must be an http(s) URL, got "${url}"`);
    check(subject === undefined || ADDRESS.test(subject), "subject", `must be an Ethereum address, got "${subject}"`);
    const circuit =
      this.options.isolation === "address" && subject !== undefined ? `${identity}/${subject.toLowerCase()}` : identity;
    return { url: this.route(url), agent: this.agentFor(circuit) };
  }

  /**
   * Connects `socket` to the routed endpoint through Tor on `identity`'s circuit: through a
   * SocksTunnel of its own (see the file comment), closed with the socket (its "end" event) or with
   * the transport. The socket connects once the tunnel listens (a tick later); what is sent before
   * waits in the socket.
   *
   * New credentials for the identity (its later streams use them too; streams in flight are left
   * alone), so that tor builds new circuits instead of attaching a connection to ones it holds for
   * the identity's old credentials: with `freshCircuit` before connecting, and after a CONNECT tor
   * left unanswered for zmqConnectTimeoutMs. Seen after the desk's onion service restarted: a new
   * pseudonym's first connection was introduced through a stale introduction point, which
   * acknowledged it, so its rendezvous circuit waited for a service that never came; tor attached
   * every reconnect with the same credentials to that circuit until it expired 90 s later, while
   * other pseudonyms reached the restarted desk in a second.
   */
  zmqConnect(socket: ZmqConnectable, endpoint: string, identity: string, options: ZmqConnectOptions = {}): void {
    check(identity.length > 0, "identity", "must be non-empty");
    const routed = this.zmqEndpoint(endpoint, identity);
    const m = /^tcp:\/\/([^:/]+|\[[0-9a-fA-F:.]+\]):(\d+)$/.exec(routed);
    check(m !== null, "endpoint", `must be tcp://host:port, got "${endpoint}" (routed to "${routed}")`, { endpoint });
    const [, host, port] = m as unknown as [string, string, string];
    if (this.closed) throw new PetraError("TOR_CONTROL_FAILED", "this TorTransport is closed", { endpoint });
    if (options.freshCircuit) this.rotate(identity);
    const where = `zmq ${host}:${port}`;
    const opening = SocksTunnel.open({
      socksHost: this.options.client.socksHost,
      socksPort: this.options.client.socksPort,
      host: host.replace(/^\[(.*)\]$/, "$1"),
      port: Number(port),
      username: () => {
        const username = this.socksUsername(identity);
        this.usernames.add(username);
        return username;
      },
      ...(this.options.zmqConnectTimeoutMs !== undefined ? { connectTimeoutMs: this.options.zmqConnectTimeoutMs } : {}),
      onFailure: (f) => {
        const what = f.reason === "refused" && f.code !== undefined ? `refused (SOCKS reply ${f.code})` : f.reason;
        this.counters.lastErrors = [
          ...this.counters.lastErrors.slice(-9),
          `${where}: SOCKS CONNECT ${what} after ${Math.round(f.afterMs)} ms`,
        ];
        // Unanswered: whatever tor holds for these credentials is stuck; the reconnect takes new
        // ones (unless something rotated them meanwhile).
        if (f.reason === "timeout" && f.username === this.socksUsername(identity)) this.rotate(identity);
      },
    });
    opening.then(
      (tunnel) => {
        if (this.closed || socket.closed) {
          tunnel.close();
          return;
        }
        this.tunnels.add(tunnel);
        const release = () => {
          if (!this.tunnels.delete(tunnel)) return;
          const s = tunnel.stats();
          for (const k of Object.keys(s) as (keyof SocksTunnelStats)[]) this.closedTunnels[k] += s[k];
          tunnel.close();
        };
        socket.events?.on("end", release);
        try {
          socket.connect(`tcp://127.0.0.1:${tunnel.port}`);
        } catch (e) {
          release();
          this.counters.lastErrors = [...this.counters.lastErrors.slice(-9), `${where}: connect failed: ${String(e)}`];
        }
      },
      (e: unknown) => {
        this.counters.lastErrors = [...this.counters.lastErrors.slice(-9), `${where}: ${String(e)}`];
      },
    );
  }

  /** New SOCKS credentials for `identity`'s next streams, leaving its streams in flight alone. */
  private rotate(identity: string): void {
    this.epochs.set(identity, (this.epochs.get(identity) ?? 0) + 1);
    this.agents.delete(identity);
  }

  /**
   * Moves `identity` to a fresh circuit: new SOCKS credentials for its next streams. Open
   * keep-alive streams of the old credentials are closed so nothing keeps using the old circuit.
   * (A zeromq socket keeps its connection: reconfigure and reconnect it.)
   */
  newCircuit(identity: string): void {
    this.epochs.set(identity, (this.epochs.get(identity) ?? 0) + 1);
    this.agents.get(identity)?.destroy();
    this.agents.delete(identity);
  }

  /** SIGNAL NEWNYM on the client's control port: every identity's next stream gets a new circuit. */
  async newnym(): Promise<void> {
    await (await this.controlConnection()).newnym();
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }

  /** The client's control connection (opened once), for circuit-status / stream-status. */
  async controlConnection(): Promise<TorControl> {
    if (!this.options.client.control) {
      throw new PetraError("TOR_CONTROL_FAILED", "this Tor client was given without a control port", {
        client: this.options.client.name,
      });
    }
    this.control ??= await TorControl.connect(this.options.client.control);
    return this.control;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.tunnels) {
      const s = t.stats();
      for (const k of Object.keys(s) as (keyof SocksTunnelStats)[]) this.closedTunnels[k] += s[k];
      t.close();
    }
    this.tunnels.clear();
    for (const p of this.providers) p.destroy();
    this.providers.clear();
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    this.control?.close();
    this.control = undefined;
  }

  /** One JSON-RPC request over the circuit of the identity it concerns, retried as the file comment says. */
  private async fetch(
    req: FetchRequest,
    signal: FetchCancelSignal | undefined,
    identity: string,
  ): Promise<GetUrlResponse> {
    const call = parseCall(req.body);
    const circuit = this.circuitIdentity(identity, call);
    const method = call?.method ?? "(unparsed)";
    const budgetMs = this.options.retryBudgetMs ?? 0;
    const retryable = call !== undefined && !NOT_RETRIED.has(method);
    this.counters.requests++;
    let failed = false;
    let attemptAt = performance.now();
    let firstFailureAt = 0;
    for (let backoffMs = 250; ; backoffMs = Math.min(2 * backoffMs, 2000)) {
      try {
        attemptAt = performance.now();
        if (failed && method === "eth_sendRawTransaction") {
          const known = await this.alreadyKnown(req, signal, circuit, call as RpcCall);
          if (known) {
            this.counters.rawTransactionsAlreadyKnown++;
            this.counters.retrying--;
            this.count(method, "recovered");
            return known;
          }
        }
        const response = await FetchRequest.createGetUrlFunc({ agent: this.agentFor(circuit) })(req, signal);
        if (failed) {
          this.counters.retrying--;
          this.count(method, "recovered");
        }
        return response;
      } catch (e) {
        const at = performance.now();
        if (!failed) {
          firstFailureAt = at;
          this.counters.retrying++;
        }
        failed = true;
        this.count(method, "failedAttempts");
        this.counters.lastErrors = [
          ...this.counters.lastErrors.slice(-9),
          `${method}: ${(e as Error)?.message ?? e} (after ${Math.round(at - attemptAt)} ms)`,
        ];
        // The retry goes over a circuit of its own, not one tor may still consider usable: new SOCKS
        // credentials for this identity (the old agent's sockets close with their streams). Seen:
        // one pseudonym's onion circuits failing for a minute after a restart while the others
        // recovered.
        this.rotate(circuit);
        const cancelled = signal?.cancelled === true;
        // The budget counts from the first failure: a request that hung before it failed still gets its retries.
        if (cancelled || !retryable || at - firstFailureAt + backoffMs > budgetMs) {
          this.counters.retrying--;
          this.count(method, "gaveUp");
          throw e;
        }
        await sleep(backoffMs);
      }
    }
  }

  /** For a retried eth_sendRawTransaction: the node's answer if it already has the transaction, else undefined. */
  private async alreadyKnown(
    req: FetchRequest,
    signal: FetchCancelSignal | undefined,
    circuit: string,
    call: RpcCall,
  ): Promise<GetUrlResponse | undefined> {
    let hash: string;
    try {
      hash = Transaction.from(String(call.params[0])).hash as string;
    } catch {
      return undefined;
    }
    const probe = req.clone();
    probe.body = { jsonrpc: "2.0", id: call.id, method: "eth_getTransactionByHash", params: [hash] };
    const answer = await FetchRequest.createGetUrlFunc({ agent: this.agentFor(circuit) })(probe, signal);
    const json = JSON.parse(Buffer.from(answer.body ?? new Uint8Array()).toString("utf8")) as { result?: unknown };
    if (answer.statusCode !== 200 || json.result === null || json.result === undefined) return undefined;
    // What the node answers to a successful eth_sendRawTransaction: the transaction's hash.
    return { ...answer, body: Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: call.id, result: hash })) };
  }

  private count(method: string, what: "failedAttempts" | "recovered" | "gaveUp"): void {
    this.counters[what]++;
    this.counters.byMethod[method] ??= { failedAttempts: 0, recovered: 0, gaveUp: 0 };
    this.counters.byMethod[method][what]++;
  }

  private agentFor(identity: string): SocksProxyAgent {
    let agent = this.agents.get(identity);
    if (!agent) {
      const { socksHost, socksPort } = this.options.client;
      // socks5h: hostnames (.onion) are resolved by Tor, never locally.
      const username = this.socksUsername(identity);
      this.usernames.add(username);
      const url = `socks5h://${encodeURIComponent(username)}:petra@${socksHost}:${socksPort}`;
      agent = new SocksProxyAgent(url, { keepAlive: this.options.keepAlive ?? true });
      this.agents.set(identity, agent);
    }
    return agent;
  }
}
