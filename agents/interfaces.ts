import type { Agent } from "node:http";
import type { JsonRpcProvider, Signer, TransactionReceipt } from "ethers";
import type { EnergyMarket } from "../typechain-types";

/**
 * The three seams every agent (DSO, prosumer, relayer) is written against. Live mode implements
 * them with wall time, a JSON-RPC node and real sockets; simulated mode with a discrete-event
 * clock and the in-process chain. Agent logic must not read the wall clock, call Math.random()
 * or open sockets itself: it goes through these.
 */

export interface Cancel {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds: since the epoch in live mode, since the start of the run in simulated mode. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Runs `fn` at `atMs` (same scale as now()); runs it at once if `atMs` has passed. */
  schedule(atMs: number, fn: () => void): Cancel;
}

/** Options a transport applies to the JSON-RPC providers it builds. */
export interface JsonRpcProviderOptions {
  /** Known chain id: saves an eth_chainId round trip per request (ethers' staticNetwork). */
  chainId?: number;
  /** How often ethers polls for receipts and blocks, in ms. Default 4000 in ethers; agents want less. */
  pollingIntervalMs?: number;
}

/** The part of a zeromq.js socket a transport needs. */
export interface ZmqConnectable {
  connect(endpoint: string): void;
  /** zeromq.js: true once the socket is closed. */
  readonly closed?: boolean;
  /** zeromq.js: the socket's event observer; a transport that holds something per connection frees it on "end". */
  readonly events?: { on(type: "end", listener: () => void): unknown };
}

/** Options of Transport.zmqConnect. */
export interface ZmqConnectOptions {
  /**
   * Tor mode: new SOCKS credentials for `identity` before this connection (its later streams use
   * them too; streams in flight are left alone), so that tor builds new circuits for it instead of
   * attaching it to ones it still holds for the identity: for a new connection that replaces one
   * that was of no use. Direct mode: no effect. Default false.
   */
  freshCircuit?: boolean;
}

/** An HTTP destination as a transport routes it (Transport.httpRoute). */
export interface HttpRoute {
  /** The URL to request: the one asked for, or its onion rewrite in Tor mode. */
  url: string;
  /** The agent whose connections leave as the identity (pass it to http.request). */
  agent: Agent;
}

/** How an agent's bytes leave it. `identity` is the pseudonym (or household) the traffic belongs to. */
export interface Transport {
  readonly kind: "direct" | "tor";
  /**
   * A JSON-RPC provider whose requests leave as `identity`: from the household's own loopback
   * source address in direct mode, over a circuit of its own in Tor mode.
   */
  jsonRpcProvider(url: string, identity: string, options?: JsonRpcProviderOptions): JsonRpcProvider;
  /**
   * Connects a ZeroMQ socket to `endpoint` so that the connection leaves as `identity`: from the
   * household's source address in direct mode ("tcp://127.0.0.7:0;127.0.0.1:5555"), through the Tor
   * client's SOCKS port with a per-identity username (its own circuit) in Tor mode. A method, not an
   * endpoint string, because Tor mode needs more than an endpoint (a local SOCKS tunnel per socket,
   * TorTransport.zmqConnect). `options.freshCircuit`: see ZmqConnectOptions.
   */
  zmqConnect(socket: ZmqConnectable, endpoint: string, identity: string, options?: ZmqConnectOptions): void;
  /**
   * How plain HTTP requests to `url` (the relayer's API) leave as `identity`: from the household's
   * source address in direct mode; in Tor mode over the identity's circuit, or, when `subject` (the
   * Ethereum address the request concerns, e.g. a withdrawal's recipient) is given and the
   * transport isolates by address, over that address's own circuit, the one its JSON-RPC requests
   * use. Ask per request: in Tor mode the agent changes after a circuit is retired.
   */
  httpRoute(url: string, identity: string, subject?: string): HttpRoute;
  close(): Promise<void>;
}

/** A log as the node returned it: enough to parse with the market's ABI and to order by. */
export interface ChainLog {
  blockNumber: number;
  logIndex: number;
  transactionHash: string;
  topics: string[];
  data: string;
}

/** Options of Chain.watchMarketLogs. */
export interface WatchOptions {
  /** First block whose logs are delivered. */
  fromBlock: number;
  /** Called when a poll fails; the watch keeps polling. Default: ignore. */
  onError?: (error: unknown) => void;
}

/** The market as an agent sees it. */
export interface Chain {
  readonly marketAddress: string;
  /** Provider for reads and log filters. */
  readonly provider: JsonRpcProvider;
  /** The market bound to `signer`; its transactions leave through the agent's transport. */
  market(signer: Signer): EnergyMarket;
  /**
   * A signer for `privateKey` on this chain. Its sends are serialised and numbered from a nonce
   * counter of its own, so that concurrent sends from one agent never reuse or skip a nonce
   * (ethers' own cache and NonceManager do both against a local node).
   */
  signer(privateKey: string): Signer;
  /**
   * Delivers every market log from `fromBlock` on, in chain order, through a node-side log filter
   * (eth_newFilter / eth_getFilterChanges, as the paper's agents polled). Handlers run one at a time.
   */
  watchMarketLogs(opts: WatchOptions, onLogs: (logs: ChainLog[]) => void | Promise<void>): Cancel;
  /**
   * The receipt of `txHash` once it is mined (reverted or not). Agents wait here rather than with
   * ethers' tx.wait(), whose polling runs on wall-clock timers that a simulated clock cannot drive.
   */
  waitForReceipt(txHash: string): Promise<TransactionReceipt>;
}

/**
 * The server side of the off-chain messaging (a ZeroMQ ROUTER in live mode): every message arrives
 * as [routing id, ...frames]; an answer goes back as [routing id, frame].
 */
export interface RouterSocket extends AsyncIterable<Uint8Array[]> {
  /** The bound endpoint, with the real port when a wildcard was asked for. */
  readonly endpoint: string;
  readonly closed: boolean;
  send(frames: Uint8Array[]): Promise<void>;
  close(): void;
}

/** The client side (a ZeroMQ DEALER): sends single frames, receives the router's answers. */
export interface DealerSocket extends AsyncIterable<Uint8Array[]> {
  send(frame: Uint8Array): Promise<void>;
  close(): void;
}

/**
 * How agents open their message sockets. Live mode: real ZeroMQ sockets whose connections leave
 * through the agent's Transport (agents/zmq-sockets.ts). Simulated mode: in-memory sockets whose
 * deliveries the discrete-event clock schedules with a latency model (agents/sim/sim-network.ts).
 */
export interface MessageSockets {
  bindRouter(endpoint: string): Promise<RouterSocket>;
  /** A dealer connected to `endpoint` whose traffic leaves as `identity` (see Transport.zmqConnect). */
  connectDealer(endpoint: string, identity: string): DealerSocket;
}
