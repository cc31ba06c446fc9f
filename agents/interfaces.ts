import type { JsonRpcProvider, Signer } from "ethers";
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

/** How an agent's bytes leave it. `identity` is the pseudonym (or household) the traffic belongs to. */
export interface Transport {
  readonly kind: "direct" | "tor";
  /**
   * A JSON-RPC provider whose requests leave as `identity`: from the household's own loopback
   * source address in direct mode, over a circuit of its own in Tor mode.
   */
  jsonRpcProvider(url: string, identity: string): JsonRpcProvider;
  /**
   * The endpoint string to hand to a ZeroMQ socket's connect() so that the connection leaves as
   * `identity` (e.g. "tcp://127.0.0.7:0;127.0.0.1:5555" binds the source address in direct mode).
   */
  zmqEndpoint(endpoint: string, identity: string): string;
  close(): Promise<void>;
}

/** The market as an agent sees it. */
export interface Chain {
  readonly marketAddress: string;
  /** Provider for reads and log filters. */
  readonly provider: JsonRpcProvider;
  /** The market bound to `signer`; its transactions leave through the agent's transport. */
  market(signer: Signer): EnergyMarket;
}
