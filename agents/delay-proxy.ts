/**
 * A TCP proxy that holds every chunk for `delayMs` before forwarding it, in both directions.
 *
 * Why: this kernel has no netem, and loopback has no real network delay, so without this every
 * latency we measure is processing cost only. The model: a proxy on a link adds `delayMs` to each
 * direction, so a request/response round trip over it gets +2*delayMs; a TCP connect through it
 * gets +0 for the local accept but +2*delayMs before the first byte can come back. Chunks keep
 * their order (Node fires timers of equal duration in insertion order) and the proxy does not
 * model bandwidth or loss: it is a pure propagation delay. Chain proxies (or use one per Tor hop,
 * see TorNetworkOptions.hopDelayMs) for multi-hop paths: a path of k delayed links adds 2*k*delayMs
 * to a round trip.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { check } from "../common/errors";

export interface DelayProxyOptions {
  /** Where the proxy listens; loopback only. Default "127.0.0.1". */
  listenHost?: string;
  /** Default 0: a free port chosen by the kernel. */
  listenPort?: number;
  /** Default "127.0.0.1". */
  targetHost?: string;
  targetPort: number;
  /** One-way delay added to every chunk in each direction. */
  delayMs: number;
}

/**
 * Pipes `from` into `to`, holding each chunk `delayMs` (0: forward at once). Ends `to` after the
 * last held chunk when `from` ends, so half-closes keep their place in the stream.
 */
export function pipeWithDelay(from: Socket, to: Socket, delayMs: number, onBytes?: (n: number) => void): void {
  const later = (fn: () => void) => (delayMs > 0 ? setTimeout(fn, delayMs) : fn());
  from.on("data", (chunk: Buffer) => {
    onBytes?.(chunk.length);
    later(() => {
      if (!to.destroyed) to.write(chunk);
    });
  });
  from.on("end", () => later(() => to.end()));
  // Both sockets are half-open capable (see allowHalfOpen below), so a clean close travels as
  // "end"; only a broken side tears the other down.
  from.on("close", (hadError) => {
    if (hadError) later(() => to.destroy());
  });
  from.on("error", () => later(() => to.destroy()));
}

export class DelayProxy {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(options: DelayProxyOptions): Promise<DelayProxy> {
    check(Number.isFinite(options.delayMs) && options.delayMs >= 0, "delayMs", "must be a number >= 0", {
      delayMs: options.delayMs,
    });
    check(Number.isInteger(options.targetPort) && options.targetPort > 0, "targetPort", "must be a port number");
    const listenHost = options.listenHost ?? "127.0.0.1";
    const targetHost = options.targetHost ?? "127.0.0.1";
    check(listenHost.startsWith("127."), "listenHost", "must be a loopback address", { listenHost });
    check(targetHost.startsWith("127."), "targetHost", "must be a loopback address", { targetHost });
    let proxy: DelayProxy | undefined;
    // allowHalfOpen: a client that sends and then shuts down its write side still gets the reply.
    // noDelay: with Nagle on, a request written in two pieces (headers, body) waits for the
    // peer's delayed ACK, adding ~40 ms steps that would pollute every latency we measure.
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      const upstream = connect({ host: targetHost, port: options.targetPort, allowHalfOpen: true, noDelay: true });
      proxy?.track(client);
      proxy?.track(upstream);
      pipeWithDelay(client, upstream, options.delayMs);
      pipeWithDelay(upstream, client, options.delayMs);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.listenPort ?? 0, listenHost, () => resolve());
    });
    proxy = new DelayProxy(server, listenHost, (server.address() as AddressInfo).port);
    return proxy;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
