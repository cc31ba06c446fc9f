import * as http from "node:http";
import * as https from "node:https";
import { FetchRequest, JsonRpcProvider, Network } from "ethers";
import { check, PetraError } from "../common/errors";
import type { HttpRoute, JsonRpcProviderOptions, Transport, ZmqConnectable } from "./interfaces";

export interface DirectTransportOptions {
  /**
   * Loopback source address per identity (household id). Every request and connection of an
   * identity leaves from its own address, so that an observer at the node or the DSO sees the
   * same "network address -> household" link it would see on a real network.
   */
  sourceAddressByIdentity: Readonly<Record<string, string>>;
}

/**
 * The n-th (0-based) household's loopback source address: 127.0.0.2, 127.0.0.3, ... then 127.0.1.2.
 * 127.0.0.1 stays with the servers (node, DSO). Linux routes all of 127.0.0.0/8 to loopback.
 */
export function loopbackAddressFor(index: number): string {
  check(
    Number.isInteger(index) && index >= 0 && index < 250 * 256,
    "index",
    `must be an integer in [0, 64000), got ${index}`,
  );
  return `127.0.${Math.floor(index / 250)}.${(index % 250) + 2}`;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Traffic leaves from the household's own loopback address; no anonymity network. */
export class DirectTransport implements Transport {
  readonly kind = "direct" as const;
  readonly #sources: Readonly<Record<string, string>>;
  readonly #agents = new Map<string, http.Agent>();

  constructor(opts: DirectTransportOptions) {
    check(
      opts !== undefined && typeof opts.sourceAddressByIdentity === "object",
      "sourceAddressByIdentity",
      "is required",
    );
    for (const [identity, address] of Object.entries(opts.sourceAddressByIdentity)) {
      const m = IPV4.exec(address);
      check(
        m !== null && m[1] === "127" && m.slice(2).every((o) => Number(o) <= 255),
        `sourceAddressByIdentity.${identity}`,
        `must be an IPv4 loopback address (127.x.y.z), got "${address}"`,
      );
    }
    this.#sources = { ...opts.sourceAddressByIdentity };
  }

  sourceAddressOf(identity: string): string {
    const address = this.#sources[identity];
    if (address === undefined) {
      throw new PetraError("INVALID_ARGUMENT", `identity: no source address configured for "${identity}"`, {
        parameter: "identity",
        identity,
      });
    }
    return address;
  }

  jsonRpcProvider(url: string, identity: string, options: JsonRpcProviderOptions = {}): JsonRpcProvider {
    const agent = this.#agentFor(url, identity);
    const request = new FetchRequest(url);
    request.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
    const network = options.chainId === undefined ? undefined : Network.from(options.chainId);
    // ethers merges options with Object.assign, so an undefined key would erase its default.
    const providerOptions: ConstructorParameters<typeof JsonRpcProvider>[2] = {
      // Batching and the response cache both hurt against a local node (TOOLCHAIN.md): batching
      // cut throughput to 14 tx/s, and the 250 ms cache handed out a stale nonce.
      batchMaxCount: 1,
      cacheTimeout: -1,
    };
    if (network) providerOptions.staticNetwork = network;
    if (options.pollingIntervalMs !== undefined) providerOptions.pollingInterval = options.pollingIntervalMs;
    const provider = new JsonRpcProvider(request, network, providerOptions);
    return provider;
  }

  /** Same agent as the identity's JSON-RPC traffic: one source address per household, whatever it asks. */
  httpRoute(url: string, identity: string, _subject?: string): HttpRoute {
    check(/^https?:\/\//.test(url), "url", `must be an http(s) URL, got "${url}"`);
    return { url, agent: this.#agentFor(url, identity) };
  }

  #agentFor(url: string, identity: string): http.Agent {
    const localAddress = this.sourceAddressOf(identity);
    const isHttps = url.startsWith("https:");
    const key = `${isHttps ? "https" : "http"}|${localAddress}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = isHttps
        ? new https.Agent({ localAddress, keepAlive: true })
        : new http.Agent({ localAddress, keepAlive: true });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  zmqConnect(socket: ZmqConnectable, endpoint: string, identity: string): void {
    socket.connect(this.zmqEndpoint(endpoint, identity));
  }

  /** The "source;destination" endpoint that binds the connection to `identity`'s source address. */
  zmqEndpoint(endpoint: string, identity: string): string {
    const m = /^tcp:\/\/(.+)$/.exec(endpoint);
    check(m !== null, "endpoint", `must be a tcp:// ZeroMQ endpoint, got "${endpoint}"`);
    // ZeroMQ's "source;destination" form binds the connecting socket to the source address.
    return `tcp://${this.sourceAddressOf(identity)}:0;${m[1]}`;
  }

  async close(): Promise<void> {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}
