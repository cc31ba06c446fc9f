/**
 * Transport through a Tor client: every identity (pseudonym) gets its own circuit.
 *
 * Isolation works through Tor's IsolateSOCKSAuth (on by default on every SocksPort): streams
 * whose SOCKS username/password differ never share a circuit. The username is a hash of the
 * identity and a per-identity epoch, so the local tor never sees the pseudonym itself and
 * newCircuit(identity) moves one identity to a fresh circuit without disturbing the others
 * (NEWNYM, by contrast, retires every circuit the client has).
 *
 * ZeroMQ: libzmq speaks SOCKS5 itself (ZMQ_SOCKS_PROXY, zeromq.js `socksProxy`) and passes
 * hostnames unresolved, so "tcp://<x>.onion:port" works. ZMQ_SOCKS_USERNAME/PASSWORD (99/100) are
 * DRAFT options in libzmq 4.3.3+; zeromq.js 6 has them commented out but the bundled libzmq (4.3.5,
 * draft API on) accepts them through the socket's setStringOption, which is how configureZmqSocket
 * gives each identity its own circuit. A connect() endpoint string alone cannot carry a socket
 * option, so `Transport.zmqEndpoint` is not enough in Tor mode: callers must also call
 * configureZmqSocket(socket, identity) (or zmqConnect) before connect.
 */
import { createHash } from "node:crypto";
import { type FetchGetUrlFunc, FetchRequest, type JsonRpcApiProviderOptions, JsonRpcProvider, Network } from "ethers";
import { SocksProxyAgent } from "socks-proxy-agent";
import { check, PetraError } from "../common/errors";
import type { JsonRpcProviderOptions, Transport, ZmqConnectable } from "./interfaces";
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
}

/** The subset of a zeromq.js socket configureZmqSocket touches. */
export type ZmqSocksSocket = ZmqConnectable;

const ZMQ_SOCKS_USERNAME = 99;
const ZMQ_SOCKS_PASSWORD = 100;

export class TorTransport implements Transport {
  readonly kind = "tor" as const;
  private readonly epochs = new Map<string, number>();
  private readonly agents = new Map<string, SocksProxyAgent>();
  private readonly providers = new Set<JsonRpcProvider>();
  private control: TorControl | undefined;

  constructor(readonly options: TorTransportOptions) {
    check(options.client.socksPort > 0, "client.socksPort", "must be a port");
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
      if (endpoint.startsWith(from)) return to + endpoint.slice(from.length);
    }
    return endpoint;
  }

  jsonRpcProvider(url: string, identity: string, options: JsonRpcProviderOptions = {}): JsonRpcProvider {
    const request = new FetchRequest(this.route(url));
    // Looked up per request, so newCircuit(identity) affects providers created earlier too.
    const getUrl: FetchGetUrlFunc = (req, signal) =>
      FetchRequest.createGetUrlFunc({ agent: this.agentFor(identity) })(req, signal);
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
   * the socket must also go through configureZmqSocket(socket, identity).
   */
  zmqEndpoint(endpoint: string, _identity: string): string {
    check(endpoint.startsWith("tcp://"), "endpoint", "only tcp:// endpoints can go through Tor", { endpoint });
    return this.route(endpoint);
  }

  /** Points a zeromq socket at the Tor SOCKS port with this identity's isolation credentials. */
  configureZmqSocket(socket: ZmqSocksSocket, identity: string): void {
    socket.socksProxy = `${this.options.client.socksHost}:${this.options.client.socksPort}`;
    const username = this.socksUsername(identity);
    // zeromq.js 6 does not expose the DRAFT options; its native setter does (see file comment).
    const native = socket as unknown as { setStringOption?: (id: number, value: string) => void };
    if (typeof native.setStringOption !== "function") {
      throw new PetraError(
        "TOR_CONTROL_FAILED",
        "this zeromq build cannot set ZMQ_SOCKS_USERNAME; circuits would be shared",
      );
    }
    try {
      native.setStringOption.call(socket, ZMQ_SOCKS_USERNAME, username);
      native.setStringOption.call(socket, ZMQ_SOCKS_PASSWORD, "petra");
    } catch (e) {
      throw new PetraError(
        "TOR_CONTROL_FAILED",
        "libzmq rejected ZMQ_SOCKS_USERNAME (needs libzmq >= 4.3.3 built with the draft API); circuits would be shared",
        {},
        { cause: e },
      );
    }
  }

  /** configureZmqSocket + connect to the routed endpoint. */
  zmqConnect(socket: ZmqSocksSocket, endpoint: string, identity: string): void {
    this.configureZmqSocket(socket, identity);
    socket.connect(this.zmqEndpoint(endpoint, identity));
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
    for (const p of this.providers) p.destroy();
    this.providers.clear();
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    this.control?.close();
    this.control = undefined;
  }

  private agentFor(identity: string): SocksProxyAgent {
    let agent = this.agents.get(identity);
    if (!agent) {
      const { socksHost, socksPort } = this.options.client;
      // socks5h: hostnames (.onion) are resolved by Tor, never locally.
      const url = `socks5h://${encodeURIComponent(this.socksUsername(identity))}:petra@${socksHost}:${socksPort}`;
      agent = new SocksProxyAgent(url, { keepAlive: this.options.keepAlive ?? true });
      this.agents.set(identity, agent);
    }
    return agent;
  }
}
