/**
 * The Tor control protocol (control-spec.txt), spoken directly over a TCP socket.
 *
 * Decision: no `tor-request`. It works, but it depends on `request` 2.88 (unmaintained since
 * 2020, deprecated, with open advisories) and an old socks-proxy-agent, and the part of it we need
 * (NEWNYM) is two lines of the control protocol. We also need what it does not offer: SAFECOOKIE
 * authentication, GETINFO status/bootstrap-phase for the launcher, circuit-status and
 * stream-status to show which circuit a stream used, ADD_ONION for onion services and async
 * events (HS_DESC). The protocol is line based and small; owning it costs ~300 lines and no
 * dependency. SOCKS itself goes through socks-proxy-agent, which is maintained.
 */
import { createHmac, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { check, PetraError } from "../../common/errors";

export interface TorControlOptions {
  /** Control port host; loopback only. Default "127.0.0.1". */
  host?: string;
  port: number;
  /** Password for HashedControlPassword; if absent, cookie authentication is used. */
  password?: string;
  /** Overrides the cookie path that PROTOCOLINFO reports. */
  cookiePath?: string;
  /** Connect plus authenticate timeout. Default 5000 ms. */
  timeoutMs?: number;
}

/** One reply: the status code and its lines (with "key=value" and data blocks unwrapped). */
export interface ControlReply {
  status: number;
  lines: string[];
}

export interface BootstrapPhase {
  progress: number;
  tag: string;
  summary: string;
}

export interface CircuitInfo {
  id: string;
  status: string;
  /** Relay fingerprints (without "$"), guard first. */
  path: string[];
  purpose?: string;
  /** The SOCKS username the circuit is isolated to, if any. */
  socksUsername?: string;
  raw: string;
}

export interface StreamInfo {
  id: string;
  status: string;
  circuitId: string;
  target: string;
}

type Pending = { resolve: (r: ControlReply) => void; reject: (e: unknown) => void };

const SAFECOOKIE_SERVER_KEY = "Tor safe cookie authentication server-to-controller hash";
const SAFECOOKIE_CLIENT_KEY = "Tor safe cookie authentication controller-to-server hash";

export class TorControl {
  private buffer = "";
  private current: string[] = [];
  private dataBlock: string[] | null = null;
  private readonly pending: Pending[] = [];
  private readonly eventListeners = new Set<(line: string) => void>();
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    const fail = (e: unknown) => {
      this.closed = true;
      const err = new PetraError(
        "TOR_CONTROL_FAILED",
        `control connection to port ${port} closed`,
        { port },
        { cause: e },
      );
      for (const p of this.pending.splice(0)) p.reject(err);
    };
    socket.on("error", fail);
    socket.on("close", () => fail(undefined));
  }

  /** Connects and authenticates (password if given, else SAFECOOKIE, else COOKIE, else NULL). */
  static async connect(options: TorControlOptions): Promise<TorControl> {
    const host = options.host ?? "127.0.0.1";
    check(/^127\.\d+\.\d+\.\d+$/.test(host), "host", "control port must be on loopback", { host });
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port: options.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new PetraError("TOR_CONTROL_FAILED", `control port ${host}:${options.port}: connect timed out`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(timer);
        reject(
          new PetraError("TOR_CONTROL_FAILED", `control port ${host}:${options.port}: ${e.message}`, {}, { cause: e }),
        );
      });
    });
    const control = new TorControl(socket, options.port);
    try {
      await control.authenticate(options);
    } catch (e) {
      control.close();
      throw e;
    }
    return control;
  }

  private async authenticate(options: TorControlOptions): Promise<void> {
    const info = await this.command("PROTOCOLINFO 1");
    const authLine = info.lines.find((l) => l.startsWith("AUTH "));
    const methods = (/METHODS=(\S+)/.exec(authLine ?? "")?.[1] ?? "").split(",");
    const cookiePath = options.cookiePath ?? /COOKIEFILE="((?:[^"\\]|\\.)*)"/.exec(authLine ?? "")?.[1];
    if (options.password !== undefined) {
      await this.command(`AUTHENTICATE ${quote(options.password)}`);
    } else if (methods.includes("SAFECOOKIE") && cookiePath) {
      // SAFECOOKIE proves both sides know the cookie without sending it, so a process that
      // squats on the control port cannot harvest it.
      const cookie = await readCookie(cookiePath);
      const clientNonce = randomBytes(32);
      const challenge = await this.command(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString("hex")}`);
      const m = /SERVERHASH=([0-9A-Fa-f]+) SERVERNONCE=([0-9A-Fa-f]+)/.exec(challenge.lines.join(" "));
      if (!m) throw new PetraError("TOR_CONTROL_FAILED", "AUTHCHALLENGE: unexpected reply", { reply: challenge.lines });
      const serverNonce = Buffer.from(m[2], "hex");
      const material = Buffer.concat([cookie, clientNonce, serverNonce]);
      const expected = createHmac("sha256", SAFECOOKIE_SERVER_KEY).update(material).digest("hex");
      if (expected.toLowerCase() !== m[1].toLowerCase()) {
        throw new PetraError("TOR_CONTROL_FAILED", "AUTHCHALLENGE: server hash mismatch (not our tor?)");
      }
      const clientHash = createHmac("sha256", SAFECOOKIE_CLIENT_KEY).update(material).digest("hex");
      await this.command(`AUTHENTICATE ${clientHash}`);
    } else if (methods.includes("COOKIE") && cookiePath) {
      await this.command(`AUTHENTICATE ${(await readCookie(cookiePath)).toString("hex")}`);
    } else if (methods.includes("NULL")) {
      await this.command("AUTHENTICATE");
    } else {
      throw new PetraError("TOR_CONTROL_FAILED", `no usable authentication method (tor offers ${methods.join(",")})`, {
        methods,
      });
    }
  }

  /** Sends one command; resolves on a 2xx reply, rejects with TOR_CONTROL_FAILED otherwise. */
  command(line: string): Promise<ControlReply> {
    if (this.closed) return Promise.reject(new PetraError("TOR_CONTROL_FAILED", "control connection is closed"));
    return new Promise<ControlReply>((resolve, reject) => {
      this.pending.push({
        resolve: (r) =>
          r.status >= 200 && r.status < 300
            ? resolve(r)
            : reject(
                new PetraError("TOR_CONTROL_FAILED", `${line.split(" ")[0]}: ${r.status} ${r.lines.join(" | ")}`, {
                  status: r.status,
                  command: line.split(" ")[0],
                }),
              ),
        reject,
      });
      this.socket.write(`${line}\r\n`);
    });
  }

  /** Values of GETINFO keys; multi-line values are joined with "\n". */
  async getInfo(key: string): Promise<string> {
    const reply = await this.command(`GETINFO ${key}`);
    const prefix = `${key}=`;
    const line = reply.lines.find((l) => l.startsWith(prefix));
    if (line === undefined) throw new PetraError("TOR_CONTROL_FAILED", `GETINFO ${key}: key missing in reply`);
    return line.slice(prefix.length);
  }

  async bootstrapPhase(): Promise<BootstrapPhase> {
    const v = await this.getInfo("status/bootstrap-phase");
    return {
      progress: Number(/PROGRESS=(\d+)/.exec(v)?.[1] ?? 0),
      tag: /TAG=(\S+)/.exec(v)?.[1] ?? "",
      summary: /SUMMARY="((?:[^"\\]|\\.)*)"/.exec(v)?.[1] ?? "",
    };
  }

  /** New streams use new circuits (Tor rate-limits this to one per 10 s in a real network). */
  async newnym(): Promise<void> {
    await this.command("SIGNAL NEWNYM");
  }

  async circuitStatus(): Promise<CircuitInfo[]> {
    const v = await this.getInfo("circuit-status");
    return v
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map(parseCircuit);
  }

  async streamStatus(): Promise<StreamInfo[]> {
    const v = await this.getInfo("stream-status");
    return v
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => {
        const [id, status, circuitId, target] = l.split(" ");
        return { id, status, circuitId, target };
      });
  }

  /** Subscribes to async events (e.g. ["HS_DESC", "STREAM"]); `listener` gets each "650" line. */
  async setEvents(events: string[], listener: (line: string) => void): Promise<() => void> {
    this.eventListeners.add(listener);
    await this.command(`SETEVENTS ${events.join(" ")}`);
    return () => this.eventListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let i = this.buffer.indexOf("\r\n"); i >= 0; i = this.buffer.indexOf("\r\n")) {
      const line = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 2);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (this.dataBlock !== null) {
      if (line === ".") {
        // "250+key=" opened the block: its value is the data lines.
        this.current[this.current.length - 1] += this.dataBlock.join("\n");
        this.dataBlock = null;
      } else {
        this.dataBlock.push(line.startsWith(".") ? line.slice(1) : line);
      }
      return;
    }
    const status = Number(line.slice(0, 3));
    const sep = line[3];
    this.current.push(line.slice(4));
    if (sep === "+") {
      this.dataBlock = [];
      return;
    }
    if (sep !== " ") return;
    const lines = this.current;
    this.current = [];
    if (status >= 600) {
      for (const l of this.eventListeners) l(lines.join("\n"));
      return;
    }
    this.pending.shift()?.resolve({ status, lines });
  }
}

function parseCircuit(line: string): CircuitInfo {
  const parts = line.split(" ");
  const [id, status] = parts;
  const pathPart = parts[2] && !parts[2].includes("=") ? parts[2] : "";
  const path = pathPart
    .split(",")
    .filter(Boolean)
    .map((hop) => hop.replace(/^\$/, "").split(/[~=]/)[0]);
  return {
    id,
    status,
    path,
    purpose: /PURPOSE=(\S+)/.exec(line)?.[1],
    socksUsername: /SOCKS_USERNAME="((?:[^"\\]|\\.)*)"/.exec(line)?.[1],
    raw: line,
  };
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

async function readCookie(path: string): Promise<Buffer> {
  try {
    return await readFile(path.replace(/\\(.)/g, "$1"));
  } catch (e) {
    throw new PetraError("TOR_CONTROL_FAILED", `cannot read control cookie ${path}`, { path }, { cause: e });
  }
}
