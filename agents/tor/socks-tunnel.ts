import { connect, createServer, type Server, type Socket } from "node:net";
import { check, PetraError } from "../../common/errors";

/**
 * A local TCP port whose every connection is carried through a SOCKS5 proxy (a tor SocksPort) to
 * one destination: a ZeroMQ socket connects to 127.0.0.1:port in plain TCP and never speaks SOCKS
 * itself (agents/transport-tor.ts, zmqConnect).
 *
 *   const tunnel = await SocksTunnel.open({ socksHost, socksPort, host: "<x>.onion", port: 5555,
 *     username: () => transport.socksUsername(identity) });
 *   dealer.connect(`tcp://127.0.0.1:${tunnel.port}`);
 *   ...
 *   tunnel.close();
 *
 * Why not libzmq's own SOCKS client (ZMQ_SOCKS_PROXY): in libzmq 4.3.5 closing a socket while it
 * waits to reconnect after a refused or broken SOCKS handshake aborts the whole process ("Bad file
 * descriptor (epoll.cpp:86)": socks_connecter_t::error() leaves a stale poll handle that
 * process_term removes a second time), and its handshake has no timeout, so a CONNECT tor holds
 * waits for tor's SocksTimeout. Here a closed or refused tunnel connection is an ordinary TCP close
 * to libzmq, which reconnects.
 *
 * Each connection asks for the credentials `username()` gives at that moment: tor isolates streams
 * by them (IsolateSOCKSAuth), so a caller that changes them after a failure moves the next
 * connection to new circuits. A CONNECT tor has not answered within `connectTimeoutMs` is given
 * up; `onFailure` hears of that and of refusals.
 */
export interface SocksTunnelOptions {
  socksHost: string;
  socksPort: number;
  /** Destination host (passed to the proxy unresolved, so an .onion name works) and port. */
  host: string;
  port: number;
  /** The SOCKS5 username (RFC 1929) for the next connection; the password is "petra". */
  username: () => string;
  /** How long a CONNECT may wait for the proxy's reply, ms. Default 15 000. */
  connectTimeoutMs?: number;
  /** A CONNECT the proxy did not answer in time ("timeout"), refused ("refused", with its SOCKS reply code) or broke off. */
  onFailure?: (failure: SocksTunnelFailure) => void;
}

export interface SocksTunnelFailure {
  reason: "timeout" | "refused" | "broken";
  /** SOCKS5 reply code of a refusal (1 general failure, 4 host unreachable, 5 refused, 6 TTL expired, ...). */
  code?: number;
  /** Time from the local connection to the failure, ms. */
  afterMs: number;
  username: string;
}

/** Connections carried so far. */
export interface SocksTunnelStats {
  /** Local connections accepted (one CONNECT each). */
  attempts: number;
  connected: number;
  timeouts: number;
  refused: number;
  broken: number;
}

const PASSWORD = "petra";

export class SocksTunnel {
  readonly #server: Server;
  readonly #o: SocksTunnelOptions;
  readonly #connectTimeoutMs: number;
  readonly #sockets = new Set<Socket>();
  readonly #stats: SocksTunnelStats = { attempts: 0, connected: 0, timeouts: 0, refused: 0, broken: 0 };
  #closed = false;

  private constructor(
    server: Server,
    o: SocksTunnelOptions,
    readonly port: number,
  ) {
    this.#server = server;
    this.#o = o;
    this.#connectTimeoutMs = o.connectTimeoutMs ?? 15_000;
  }

  /**
   * Listens on 127.0.0.1 (a free port) and carries each connection to `host:port` through the
   * proxy. Bad options throw at once (INVALID_ARGUMENT naming the option); the listening is async.
   */
  static open(o: SocksTunnelOptions): Promise<SocksTunnel> {
    check(
      /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(o.socksHost),
      "socksHost",
      `must be a loopback address, got "${o.socksHost}"`,
    );
    check(
      Number.isInteger(o.socksPort) && o.socksPort > 0 && o.socksPort < 65536,
      "socksPort",
      `must be a port, got ${o.socksPort}`,
    );
    check(
      o.host.length > 0 && Buffer.byteLength(o.host) < 256,
      "host",
      `must be a host name of 1-255 bytes, got "${o.host}"`,
    );
    check(Number.isInteger(o.port) && o.port > 0 && o.port < 65536, "port", `must be a port, got ${o.port}`);
    check(
      o.connectTimeoutMs === undefined || (Number.isFinite(o.connectTimeoutMs) && o.connectTimeoutMs > 0),
      "connectTimeoutMs",
      `must be a number > 0, got ${o.connectTimeoutMs}`,
    );
    return SocksTunnel.#listen(o);
  }

  static async #listen(o: SocksTunnelOptions): Promise<SocksTunnel> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) =>
        reject(
          new PetraError(
            "TOR_CONTROL_FAILED",
            `SOCKS tunnel to ${o.host}:${o.port}: cannot listen on 127.0.0.1: ${e.message}`,
            {},
            { cause: e },
          ),
        ),
      );
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") {
      server.close();
      throw new PetraError("TOR_CONTROL_FAILED", `SOCKS tunnel to ${o.host}:${o.port}: no local port`);
    }
    const tunnel = new SocksTunnel(server, o, address.port);
    server.on("connection", (local) => tunnel.#carry(local));
    return tunnel;
  }

  stats(): SocksTunnelStats {
    return { ...this.#stats };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops listening and drops every connection it carries. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  #carry(local: Socket): void {
    if (this.#closed) {
      local.destroy();
      return;
    }
    this.#stats.attempts++;
    const username = this.#o.username();
    const t0 = performance.now();
    const upstream = connect({ host: this.#o.socksHost, port: this.#o.socksPort });
    for (const s of [local, upstream]) {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
      s.on("error", () => undefined);
    }
    // What the local side sends before the CONNECT is answered (libzmq's greeting) waits here; read
    // rather than paused, so that a local close is seen at once.
    const early: Buffer[] = [];
    const hold = (chunk: Buffer) => early.push(chunk);
    local.on("data", hold);
    let done = false;
    const fail = (reason: SocksTunnelFailure["reason"], code?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      local.destroy();
      upstream.destroy();
      // Closed by its owner (the tunnel, or the local side that gave up): nothing to report.
      if (this.#closed || (reason === "broken" && localClosed)) return;
      this.#stats[reason === "timeout" ? "timeouts" : reason]++;
      this.#o.onFailure?.({
        reason,
        afterMs: performance.now() - t0,
        username,
        ...(code !== undefined ? { code } : {}),
      });
    };
    const timer = setTimeout(() => fail("timeout"), this.#connectTimeoutMs);
    // Until the CONNECT succeeded: a closed side is a broken attempt.
    const broken = () => fail("broken");
    let localClosed = false;
    local.once("close", () => {
      localClosed = true;
    });
    local.once("close", broken);
    upstream.once("close", broken);

    socks5Handshake(upstream, { username, password: PASSWORD, host: this.#o.host, port: this.#o.port }).then((r) => {
      if (done) return;
      if (!r.ok) return fail(r.reason, r.code);
      done = true;
      clearTimeout(timer);
      local.off("close", broken);
      upstream.off("close", broken);
      this.#stats.connected++;
      local.off("data", hold);
      for (const chunk of early) upstream.write(chunk);
      if (r.rest.length > 0) local.write(r.rest);
      local.on("close", () => upstream.destroy());
      upstream.on("close", () => local.destroy());
      upstream.pipe(local);
      local.pipe(upstream);
    });
  }
}

/** How a SOCKS5 handshake ended: connected (with what the proxy sent after its reply), or why not. */
export type Socks5Outcome =
  | { ok: true; rest: Buffer }
  | { ok: false; reason: "refused" | "broken" /** The SOCKS5 reply code of a refused CONNECT. */; code?: number };

/**
 * The client side of a SOCKS5 CONNECT by domain name (RFC 1928) with username/password
 * authentication (RFC 1929) over `socket`, connected or connecting: tor isolates streams by the
 * credentials. Resolves once the proxy has replied, the socket closed or the bytes made no sense;
 * never rejects and sets no timer (the caller bounds the wait and destroys the socket).
 */
export function socks5Handshake(
  socket: Socket,
  o: { username: string; password: string; host: string; port: number },
): Promise<Socks5Outcome> {
  return new Promise((resolve) => {
    const user = Buffer.from(o.username);
    const pass = Buffer.from(o.password);
    const host = Buffer.from(o.host);
    let stage: "method" | "auth" | "reply" = "method";
    let buf = Buffer.alloc(0);
    const end = (outcome: Socks5Outcome) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(outcome);
    };
    const onClose = () => end({ ok: false, reason: "broken" });
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === "method") {
        if (buf.length < 2) return;
        if (buf[0] !== 5 || buf[1] !== 2) return end({ ok: false, reason: "broken" });
        buf = buf.subarray(2);
        stage = "auth";
        socket.write(Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]));
      }
      if (stage === "auth") {
        if (buf.length < 2) return;
        if (buf[1] !== 0) return end({ ok: false, reason: "refused" });
        buf = buf.subarray(2);
        stage = "reply";
        socket.write(
          Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), host, Buffer.from([o.port >> 8, o.port & 0xff])]),
        );
      }
      if (stage === "reply") {
        if (buf.length < 5) return;
        if (buf[1] !== 0) return end({ ok: false, reason: "refused", code: buf[1] as number });
        // VER REP RSV ATYP BND.ADDR BND.PORT: the address's length depends on its type.
        const atyp = buf[3];
        const addressBytes = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + (buf[4] as number) : -1;
        if (addressBytes < 0) return end({ ok: false, reason: "broken" });
        const replyBytes = 4 + addressBytes + 2;
        if (buf.length < replyBytes) return;
        end({ ok: true, rest: buf.subarray(replyBytes) });
      }
    };
    socket.on("data", onData);
    socket.once("close", onClose);
    const greet = () => socket.write(Buffer.from([5, 1, 2]));
    if (socket.connecting) socket.once("connect", greet);
    else greet();
  });
}
