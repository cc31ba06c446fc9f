/**
 * Builds and runs a private Tor network on 127.0.0.1 from Debian's `tor`, the way chutney does:
 * directory authorities (keys from tor-gencert), relays, exits whose policy allows only
 * 127.0.0.0/8, clients, and one onion-service host carrying the lab's onion services.
 *
 * Everything binds to loopback, ports are picked at run time, data lives in a temp dir, and every
 * tor we start is tracked by PID: stop() kills them, and so do exit/signal handlers if the parent
 * dies; each torrc also names the parent as __OwningControllerProcess so tor exits by itself even
 * if the parent is SIGKILLed (tor polls for it).
 *
 * The second mode, useExistingTor() in tor-existing.ts, wraps a Tor client someone else runs (e.g. a
 * system tor on 9050/9051), which is how the same transport reaches the public Tor network.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check, isError, PetraError } from "../../common/errors";
import { DelayProxy } from "../delay-proxy";
import { freePorts } from "../free-ports";
import { socks5Connect } from "./socks-probe";
import { TorControl, type TorControlOptions } from "./tor-control";

export type TorRole = "authority" | "relay" | "exit" | "client" | "onion-host";

export interface OnionServiceSpec {
  /** Name to look the service up by, e.g. "rpc", "dso", "relayer". */
  name: string;
  /** Local port the service forwards to (on 127.0.0.1). */
  targetPort: number;
  /** Port clients dial on the onion address. Default: targetPort. */
  virtualPort?: number;
}

export interface TorNetworkOptions {
  /** Directory authorities (also relays). Default 3. */
  authorities?: number;
  /** Non-exit relays. Default 1. */
  relays?: number;
  /** Exits, policy `accept 127.0.0.0/8:*`. Default 2. */
  exits?: number;
  /** Tor clients with a SOCKS port each. Default 1. */
  clients?: number;
  /**
   * Onion services, all hosted by one extra tor. Default none. Each also exposes virtual port
   * PROBE_PORT (7), which the launcher uses during bootstrap; do not use 7 as a virtualPort.
   */
  onionServices?: OnionServiceSpec[];
  /** Whole-bootstrap budget. Default DEFAULT_BOOTSTRAP_TIMEOUT_MS. */
  bootstrapTimeoutMs?: number;
  /** Parent of the temp data dir. Default os.tmpdir(). */
  baseDir?: string;
  /** Keep the data dir after stop() (logs for debugging). Default false. */
  keepDataDir?: boolean;
  /**
   * One-way delay added on every OR link (client->guard, relay->relay, ...) by a DelayProxy in
   * front of each relay's ORPort: relays advertise the proxy's port and listen on another.
   * Default 0 (no proxies).
   */
  hopDelayMs?: number;
  /**
   * Where exits live: "shared" (default) on 127.0.0.1 with everything else, "own" each on an
   * address of its own (127.0.1.1, 127.0.1.2, ...). See exitAddresses for what that changes.
   */
  exitPlacement?: "shared" | "own";
  /** Default "tor" and "tor-gencert" from PATH. */
  torPath?: string;
  torGencertPath?: string;
  /** Progress lines (node started, bootstrap reached); default silent. */
  log?: (line: string) => void;
  /**
   * Aborts the bootstrap wait (the start then stops what it started and rejects): for callers that
   * start the network alongside other work and may fail first.
   */
  signal?: AbortSignal;
}

export interface TorNodeInfo {
  name: string;
  role: TorRole;
  pid: number;
  dataDir: string;
  controlPort: number;
  /** Advertised ORPort (the delay proxy's port when hopDelayMs > 0). */
  orPort?: number;
  dirPort?: number;
  socksPort?: number;
  /** RSA identity fingerprint, hex without spaces. */
  fingerprint?: string;
}

/** What a transport needs to use a Tor client. */
export interface TorClientEndpoint {
  name: string;
  socksHost: string;
  socksPort: number;
  control?: TorControlOptions;
}

export interface OnionService {
  name: string;
  /** "<56 chars>.onion" */
  hostname: string;
  virtualPort: number;
  targetPort: number;
  /** "ED25519-V3:..." so the same address can be re-added after a restart. */
  privateKey: string;
}

const CONTROL_POLL_MS = 250;
/** Virtual port every onion service also exposes for the launcher's reachability probe. */
export const PROBE_PORT = 7;

/**
 * Bootstrap budget of a private network without added delays. It is 15-35 s here at load 2-5, but a
 * CI machine once took more than 90 s: its consensus dropped the exits' Exit flags for a round
 * while the onion probes waited. A budget only matters when the network fails to come up, so
 * it is generous.
 */
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 180_000;

// Every tor this process started, by PID. Module-level on purpose: exit and signal handlers are
// process-wide and must reach every network, including ones whose owner threw before stop().
const livePids = new Set<number>();
// Data dirs of networks not yet stopped, removed by the exit handler too (unless keepDataDir).
const liveDirs = new Set<string>();
let handlersInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // Each tor is spawned detached, i.e. leads its own process group: -pid reaches it and anything it forks.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const pid of livePids) killGroup(pid, "SIGKILL");
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      for (const pid of livePids) killGroup(pid, "SIGKILL");
      livePids.clear();
      // Re-raise so the default action (and exit code) still happens.
      process.kill(process.pid, sig);
    });
  }
}

/** Throws TOR_NOT_INSTALLED unless `tor` (and, for a private network, `tor-gencert`) runs. */
export function assertTorInstalled(
  options: { torPath?: string; torGencertPath?: string; needGencert?: boolean } = {},
): string {
  const tor = options.torPath ?? "tor";
  const r = spawnSync(tor, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new PetraError(
      "TOR_NOT_INSTALLED",
      `tor not found or not runnable (${tor}); install it: apt-get install -y tor`,
      {
        torPath: tor,
      },
    );
  }
  if (options.needGencert !== false) {
    const gencert = options.torGencertPath ?? "tor-gencert";
    const g = spawnSync(gencert, ["--help"], { encoding: "utf8" });
    if (g.error) {
      throw new PetraError(
        "TOR_NOT_INSTALLED",
        `tor-gencert not found (${gencert}); it ships with Debian's tor package`,
        {
          torGencertPath: gencert,
        },
      );
    }
  }
  return /Tor version (\S+?)\.?$/m.exec(r.stdout)?.[1] ?? "unknown";
}

/** True when tor is installed; tests use it to skip (never fake) Tor scenarios. */
export function torAvailable(): boolean {
  try {
    assertTorInstalled();
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], input: string, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", (e) =>
      reject(new PetraError("TOR_NOT_INSTALLED", `${cmd}: ${e.message}`, { cmd }, { cause: e })),
    );
    child.on("close", (code) =>
      code === 0
        ? resolve(out)
        : reject(new PetraError("PROCESS_FAILED", `${cmd} ${args.join(" ")} exited ${code}: ${err.trim()}`, { cmd })),
    );
    child.stdin.end(input);
  });
}

async function tail(path: string, lines = 15): Promise<string> {
  try {
    return (await readFile(path, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface NodePlan {
  name: string;
  role: TorRole;
  dataDir: string;
  controlPort: number;
  orPort?: number;
  /** Where tor really listens when a delay proxy sits on orPort. */
  orListenPort?: number;
  dirPort?: number;
  socksPort?: number;
  fingerprint?: string;
  v3ident?: string;
  /** The relay's Address and ORPort host. */
  address: string;
}

export class TorNetwork {
  private readonly children = new Map<string, ChildProcess>();
  private readonly proxies: DelayProxy[] = [];
  private readonly onions = new Map<string, OnionService>();
  private stopped = false;
  /** Milliseconds from start() to all clients at 100% and all onion descriptors uploaded. */
  bootstrapMs = 0;

  private constructor(
    readonly dir: string,
    private readonly plans: NodePlan[],
    private readonly options: TorNetworkOptions,
  ) {}

  /** Starts the network and waits for bootstrap; on any failure stops what it started and throws. */
  static async start(options: TorNetworkOptions = {}): Promise<TorNetwork> {
    const counts = {
      authority: options.authorities ?? 3,
      relay: options.relays ?? 1,
      exit: options.exits ?? 2,
      client: options.clients ?? 1,
    };
    check(Number.isInteger(counts.authority) && counts.authority >= 1, "authorities", "must be an integer >= 1");
    check(Number.isInteger(counts.relay) && counts.relay >= 0, "relays", "must be an integer >= 0");
    check(Number.isInteger(counts.exit) && counts.exit >= 1, "exits", "must be an integer >= 1");
    check(Number.isInteger(counts.client) && counts.client >= 1, "clients", "must be an integer >= 1");
    check(
      counts.authority + counts.relay + counts.exit >= 3,
      "relays",
      "a circuit needs 3 distinct relays: authorities + relays + exits must be >= 3",
    );
    const services = options.onionServices ?? [];
    for (const s of services) {
      check(Number.isInteger(s.targetPort) && s.targetPort > 0, "onionServices.targetPort", "must be a port", { ...s });
      check(
        (s.virtualPort ?? s.targetPort) !== PROBE_PORT,
        "onionServices.virtualPort",
        `${PROBE_PORT} is the launcher's probe port`,
        { ...s },
      );
    }
    check(new Set(services.map((s) => s.name)).size === services.length, "onionServices", "names must be unique");
    const hopDelayMs = options.hopDelayMs ?? 0;
    check(hopDelayMs >= 0, "hopDelayMs", "must be >= 0");
    check(
      options.exitPlacement === undefined || options.exitPlacement === "shared" || options.exitPlacement === "own",
      "exitPlacement",
      'must be "shared" or "own"',
    );
    assertTorInstalled(options);
    installExitHandlers();

    const t0 = performance.now();
    const dir = await mkdtemp(join(options.baseDir ?? tmpdir(), "petra-tor-"));
    if (!options.keepDataDir) liveDirs.add(dir);
    const roles: [TorRole, number, string][] = [
      ["authority", counts.authority, "auth"],
      ["relay", counts.relay, "relay"],
      ["exit", counts.exit, "exit"],
      ["client", counts.client, "client"],
      ["onion-host", services.length > 0 ? 1 : 0, "onion"],
    ];
    const isRelay = (r: TorRole) => r === "authority" || r === "relay" || r === "exit";
    const plans: NodePlan[] = [];
    for (const [role, n, prefix] of roles) {
      for (let i = 0; i < n; i++) {
        const name = `${prefix}${i}`;
        plans.push({
          name,
          role,
          dataDir: join(dir, name),
          controlPort: 0,
          address: role === "exit" && options.exitPlacement === "own" ? `127.0.1.${i + 1}` : "127.0.0.1",
        });
      }
    }
    const needed = plans.reduce(
      (n, p) =>
        n +
        1 +
        (isRelay(p.role) ? (hopDelayMs > 0 ? 2 : 1) : 0) +
        (p.role === "authority" ? 1 : 0) +
        (p.role === "client" ? 1 : 0),
      0,
    );
    const ports = await freePorts(needed);
    for (const p of plans) {
      p.controlPort = ports.pop()!;
      if (isRelay(p.role)) {
        p.orPort = ports.pop()!;
        if (hopDelayMs > 0) p.orListenPort = ports.pop()!;
      }
      if (p.role === "authority") p.dirPort = ports.pop()!;
      if (p.role === "client") p.socksPort = ports.pop()!;
    }

    const net = new TorNetwork(dir, plans, options);
    try {
      await net.prepareKeys();
      await net.writeTorrcs();
      if (hopDelayMs > 0) {
        for (const p of plans.filter((q) => q.orListenPort)) {
          net.proxies.push(
            await DelayProxy.start({
              listenHost: p.address,
              listenPort: p.orPort,
              targetHost: p.address,
              targetPort: p.orListenPort!,
              delayMs: hopDelayMs,
            }),
          );
        }
      }
      for (const p of plans) net.spawnNode(p);
      await net.waitForBootstrap(t0 + (options.bootstrapTimeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS), services);
      net.bootstrapMs = performance.now() - t0;
      options.log?.(`tor network up in ${(net.bootstrapMs / 1000).toFixed(1)} s (${dir})`);
      return net;
    } catch (e) {
      // A network that did not come up keeps its logs: they are all there is to say why.
      if (isError(e, "TOR_BOOTSTRAP_TIMEOUT")) net.keepLogs = true;
      await net.stop();
      throw e;
    }
  }

  /** Set when bootstrap timed out: stop() then leaves the data dir (named in the error) in place. */
  private keepLogs = false;

  get nodes(): TorNodeInfo[] {
    return this.plans.map((p) => ({
      name: p.name,
      role: p.role,
      pid: this.children.get(p.name)?.pid ?? -1,
      dataDir: p.dataDir,
      controlPort: p.controlPort,
      orPort: p.orPort,
      dirPort: p.dirPort,
      socksPort: p.socksPort,
      fingerprint: p.fingerprint,
    }));
  }

  /** The Tor clients, ready for a TorTransport. */
  get clients(): TorClientEndpoint[] {
    return this.plans
      .filter((p) => p.role === "client")
      .map((p) => ({
        name: p.name,
        socksHost: "127.0.0.1",
        socksPort: p.socksPort!,
        control: { port: p.controlPort, cookiePath: join(p.dataDir, "control_auth_cookie") },
      }));
  }

  /**
   * Source addresses exits connect from (what an observer at the RPC node sees in Tor mode):
   * 127.0.0.1 whatever the placement. Exits cannot be told apart by address here: tor ignores
   * OutboundBindAddressExit for loopback destinations (measured), and every destination is loopback.
   */
  get exitAddresses(): string[] {
    // exitPlacement "shared": every relay shares 127.0.0.1 with the lab's services, and Tor sends a
    // stream whose destination is a relay's own address to that relay as its exit ("exit
    // enclave", router_find_exact_exit_enclave): so every stream to 127.0.0.1 leaves through one
    // exit, the first listed. Kill it and the exit route is down for the rest of the run, because
    // the authorities (AssumeReachable, as in chutney) keep the dead relay listed as Running.
    // exitPlacement "own": no relay is on 127.0.0.1, so there is no enclave and clients pick any
    // exit, as on the public network (the exits' policy then has to read "accept *:*", see
    // writeTorrcs). The onion route depends on neither.
    return this.plans.some((p) => p.role === "exit") ? ["127.0.0.1"] : [];
  }

  onion(name: string): OnionService {
    const s = this.onions.get(name);
    if (!s) throw new PetraError("INVALID_ARGUMENT", `onion service "${name}" is not part of this network`, { name });
    return s;
  }

  get onionServices(): OnionService[] {
    return [...this.onions.values()];
  }

  /** An authenticated control connection to node `name`; the caller closes it. */
  control(name: string): Promise<TorControl> {
    const p = this.plan(name);
    return TorControl.connect({ port: p.controlPort, cookiePath: join(p.dataDir, "control_auth_cookie") });
  }

  /** Kills one node (fault injection: a relay dying mid-run). */
  async killNode(name: string): Promise<void> {
    const child = this.children.get(name);
    if (!child?.pid) throw new PetraError("INVALID_ARGUMENT", `node "${name}" is not running`, { name });
    await this.killChild(child);
    this.children.delete(name);
  }

  /**
   * Makes the authorities stop listing relay `name` from their next vote (a consensus every 10 s
   * here): "!reject FINGERPRINT" in each authority's approved-routers, then SIGHUP by PID. What the
   * public network's authorities do once their reachability tests fail (there within an hour); this
   * lab's authorities never test (AssumeReachable), so a killed relay would stay listed as Running
   * and clients and onion services would keep choosing it.
   */
  async dropFromConsensus(name: string): Promise<void> {
    const relay = this.plan(name);
    if (!relay.fingerprint) throw new PetraError("INVALID_ARGUMENT", `node "${name}" is not a relay`, { name });
    for (const auth of this.plans.filter((p) => p.role === "authority")) {
      const pid = this.children.get(auth.name)?.pid;
      if (pid === undefined) continue;
      await appendFile(join(auth.dataDir, "approved-routers"), `!reject ${relay.fingerprint}\n`);
      process.kill(pid, "SIGHUP");
    }
  }

  /**
   * Restarts one onion service (fault injection): DEL_ONION, then ADD_ONION with the same key, so
   * the address stays and the intro points change, as after a service restart. Resolves when
   * the new descriptor is uploaded; returns the milliseconds that took.
   */
  async restartOnionService(name: string, timeoutMs = 60_000): Promise<number> {
    const o = this.onion(name);
    const host = this.plans.find((p) => p.role === "onion-host")!;
    const t0 = performance.now();
    const control = await this.control(host.name);
    try {
      const serviceId = o.hostname.replace(/\.onion$/, "");
      let uploaded = false;
      await control.setEvents(["HS_DESC"], (line) => {
        if (line.startsWith(`HS_DESC UPLOADED ${serviceId}`)) uploaded = true;
      });
      await control.command(`DEL_ONION ${serviceId}`);
      await control.command(
        `ADD_ONION ${o.privateKey} Flags=Detach Port=${o.virtualPort},127.0.0.1:${o.targetPort} Port=${PROBE_PORT},127.0.0.1:${this.probeTargetPort}`,
      );
      while (!uploaded) {
        if (performance.now() - t0 > timeoutMs) {
          throw new PetraError(
            "TOR_BOOTSTRAP_TIMEOUT",
            `onion service ${name}: no descriptor uploaded ${timeoutMs} ms after restart`,
            {
              node: host.name,
              service: name,
            },
          );
        }
        await sleep(CONTROL_POLL_MS);
      }
      return performance.now() - t0;
    } finally {
      control.close();
    }
  }

  /** Stops every tor and proxy this network started (by PID) and removes the data dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.children.values()].map((c) => this.killChild(c)));
    this.children.clear();
    await Promise.all(this.proxies.map((p) => p.close()));
    if (!this.options.keepDataDir && !this.keepLogs) rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }

  private plan(name: string): NodePlan {
    const p = this.plans.find((q) => q.name === name);
    if (!p) throw new PetraError("INVALID_ARGUMENT", `no tor node named "${name}"`, { name });
    return p;
  }

  private async killChild(child: ChildProcess): Promise<void> {
    const pid = child.pid;
    if (pid === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      killGroup(pid, "SIGTERM");
      // ShutdownWaitLength 0 makes SIGTERM immediate; a tor stuck in a blocking call gets SIGKILL.
      const timer = setTimeout(() => killGroup(pid, "SIGKILL"), 1000);
      await exited;
      clearTimeout(timer);
    }
    livePids.delete(pid);
  }

  private async prepareKeys(): Promise<void> {
    const tor = this.options.torPath ?? "tor";
    const gencert = this.options.torGencertPath ?? "tor-gencert";
    await Promise.all(
      this.plans.map(async (p) => {
        await mkdir(join(p.dataDir, "keys"), { recursive: true, mode: 0o700 });
        if (p.role === "authority") {
          const k = join(p.dataDir, "keys");
          // Empty passphrase on stdin: these keys live for one test run in a temp dir.
          await run(
            gencert,
            [
              "--create-identity-key",
              "--passphrase-fd",
              "0",
              "-i",
              join(k, "authority_identity_key"),
              "-s",
              join(k, "authority_signing_key"),
              "-c",
              join(k, "authority_certificate"),
              "-m",
              "12",
              "-a",
              `127.0.0.1:${p.dirPort}`,
            ],
            "\n",
            p.dataDir,
          );
          const cert = await readFile(join(k, "authority_certificate"), "utf8");
          p.v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
        }
        if (p.role === "authority" || p.role === "relay" || p.role === "exit") {
          await run(
            tor,
            [
              "--quiet",
              "--ignore-missing-torrc",
              "-f",
              "/dev/null",
              "--list-fingerprint",
              "--orport",
              "1",
              "--Address",
              "127.0.0.1",
              "--datadirectory",
              p.dataDir,
            ],
            "",
            p.dataDir,
          );
          p.fingerprint = (await readFile(join(p.dataDir, "fingerprint"), "utf8")).trim().split(/\s+/)[1];
        }
      }),
    );
  }

  private async writeTorrcs(): Promise<void> {
    const dirAuthorities = this.plans
      .filter((p) => p.role === "authority")
      .map(
        (p) =>
          `DirAuthority ${p.name} orport=${p.orPort} no-v2 v3ident=${p.v3ident} 127.0.0.1:${p.dirPort} ${p.fingerprint}`,
      );
    for (const p of this.plans) {
      const lines = [
        "TestingTorNetwork 1",
        `DataDirectory ${p.dataDir}`,
        "RunAsDaemon 0",
        `Nickname ${p.name}`,
        "ShutdownWaitLength 0",
        `PidFile ${join(p.dataDir, "pid")}`,
        `Log notice file ${join(p.dataDir, "notice.log")}`,
        "SafeLogging 0",
        "LogTimeGranularity 1",
        `ControlPort 127.0.0.1:${p.controlPort}`,
        "CookieAuthentication 1",
        `__OwningControllerProcess ${process.pid}`,
        // Settings from chutney's test networks: a handful of relays bootstraps in seconds.
        "PathsNeededToBuildCircuits 0.25",
        "TestingDirAuthVoteExit *",
        "TestingDirAuthVoteGuard *",
        "TestingDirAuthVoteHSDir *",
        "TestingMinExitFlagThreshold 0",
        "V3AuthNIntervalsValid 2",
        "AssumeReachable 1",
        "ClientUseIPv6 0",
        "Sandbox 0",
        ...dirAuthorities,
      ];
      if (p.role === "authority" || p.role === "relay" || p.role === "exit") {
        lines.push(`Address ${p.address}`, `ContactInfo ${p.name}@petra.invalid`, "SocksPort 0");
        if (p.orListenPort) {
          lines.push(
            `ORPort ${p.address}:${p.orPort} NoListen IPv4Only`,
            `ORPort ${p.address}:${p.orListenPort} NoAdvertise IPv4Only`,
          );
        } else {
          lines.push(`ORPort ${p.address}:${p.orPort} IPv4Only`);
        }
        // Connections to other relays leave from the relay's own address, as on a real network.
        if (p.address !== "127.0.0.1") lines.push(`OutboundBindAddressOR ${p.address}`);
      }
      if (p.role === "authority") {
        lines.push(
          "AuthoritativeDirectory 1",
          "V3AuthoritativeDirectory 1",
          `DirPort 127.0.0.1:${p.dirPort} IPv4Only`,
          "V3AuthVotingInterval 10",
          "TestingV3AuthInitialVotingInterval 5",
          "V3AuthVoteDelay 2",
          "TestingV3AuthInitialVoteDelay 2",
          "V3AuthDistDelay 2",
          "TestingV3AuthInitialDistDelay 2",
          "ExitRelay 0",
          "ExitPolicy reject *:*",
        );
      }
      if (p.role === "relay") lines.push("ExitRelay 0", "ExitPolicy reject *:*");
      if (p.role === "exit" && p.address === "127.0.0.1") {
        lines.push(
          "ExitRelay 1",
          "IPv6Exit 0",
          // Loopback is the only destination in the lab; the defaults would reject it as private.
          "ExitPolicyRejectPrivate 0",
          "ExitPolicyRejectLocalInterfaces 0",
          "ExitPolicy accept 127.0.0.0/8:*",
          "ExitPolicy reject *:*",
        );
      } else if (p.role === "exit") {
        lines.push(
          "ExitRelay 1",
          "IPv6Exit 0",
          "ExitPolicyRejectPrivate 0",
          "ExitPolicyRejectLocalInterfaces 0",
          // An exit on an address of its own is chosen by the clients' ordinary exit selection, and
          // that found no exit for 127.0.0.1 under "accept 127.0.0.0/8:*" (tor 0.4.9: "Found 0
          // servers that might support 0/1 pending connections"), but does under "accept *:*".
          // The bind keeps it on loopback all the same: tor binds exit connections to
          // OutboundBindAddressExit except for loopback destinations, and the kernel refuses a
          // loopback source towards anything else (EINVAL).
          "ExitPolicy accept *:*",
          `OutboundBindAddressExit ${p.address}`,
        );
      }
      if (p.role === "client" || p.role === "onion-host") {
        // Microdescriptor policy summaries drop private ranges, so with them a client never
        // picks a loopback-only exit.
        lines.push("UseMicrodescriptors 0");
        // Loopback circuits build in milliseconds, so an adaptive build timeout learns a tiny
        // value and then kills every build whenever the shared CPU stalls: use a fixed one.
        lines.push("LearnCircuitBuildTimeout 0", "CircuitBuildTimeout 30");
        // Vanguards-lite pins layer-2 relays for days; a handful of relays whose descriptors churn
        // while the network settles can leave that set empty ("Could not find a node that matches
        // the configured _HSLayer2Nodes set") and onion circuits then fail until restart.
        lines.push("VanguardsLiteEnabled 0");
        lines.push(p.socksPort ? `SocksPort 127.0.0.1:${p.socksPort}` : "SocksPort 0");
        // A SOCKS request tor cannot attach waits SocksTimeout (default 2 min) before tor answers
        // it; a client without a timeout of its own then sits on it (libzmq's SOCKS connect did,
        // for the rest of a run after a relay died: measured). The ZeroMQ tunnel now gives up at
        // 15 s by itself; 30 s bounds every other client, and 15 s was too short for a client to
        // find an onion service again after the service restarted.
        if (p.socksPort) lines.push("SocksTimeout 30");
      }
      await writeFile(join(p.dataDir, "torrc"), `${lines.join("\n")}\n`);
    }
  }

  private spawnNode(p: NodePlan): void {
    const tor = this.options.torPath ?? "tor";
    const child = spawn(tor, ["-f", join(p.dataDir, "torrc"), "--quiet"], {
      cwd: p.dataDir,
      detached: true,
      stdio: "ignore",
    });
    if (child.pid === undefined) {
      throw new PetraError("PROCESS_FAILED", `could not start tor for ${p.name}`, { node: p.name });
    }
    livePids.add(child.pid);
    child.once("exit", () => livePids.delete(child.pid!));
    this.children.set(p.name, child);
    this.options.log?.(`started ${p.name} (${p.role}) pid ${child.pid}`);
  }

  private async assertRunning(p: NodePlan): Promise<void> {
    const child = this.children.get(p.name);
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      throw new PetraError(
        "PROCESS_FAILED",
        `tor node ${p.name} (${p.role}) exited during bootstrap (code ${child?.exitCode}, signal ${child?.signalCode}); last log lines:\n${await tail(join(p.dataDir, "notice.log"))}`,
        { node: p.name, role: p.role, dataDir: p.dataDir },
      );
    }
  }

  private async connectWhenUp(p: NodePlan, deadline: number, status: Map<string, string>): Promise<TorControl> {
    for (;;) {
      await this.assertRunning(p);
      if (existsSync(join(p.dataDir, "control_auth_cookie"))) {
        try {
          return await this.control(p.name);
        } catch {
          // cookie written before the port listens: retry
        }
      }
      this.checkDeadline(deadline);
      status.set(p.name, "control port not up");
      await sleep(CONTROL_POLL_MS);
    }
  }

  private async waitForBootstrap(deadline: number, services: OnionServiceSpec[]): Promise<void> {
    // The probes need a listening target: a refused connection makes a client count 127.0.0.1 as
    // unreachable through that exit (after three, it gives up on the address), and through an
    // onion it is indistinguishable from other failures. So each onion also maps PROBE_PORT here.
    const target = createServer((sock) => sock.end());
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", () => r()));
    this.probeTargetPort = (target.address() as AddressInfo).port;
    try {
      await this.waitForNodes(deadline, services);
    } finally {
      target.close();
    }
  }

  private probeTargetPort = 0;

  /** Throws "deadline" past the bootstrap budget, and an error of its own once the caller aborted. */
  private checkDeadline(deadline: number): void {
    if (this.options.signal?.aborted) {
      throw new PetraError("PROCESS_FAILED", "tor network start aborted by its caller", { dataDir: this.dir });
    }
    if (performance.now() > deadline) throw new Error("deadline");
  }

  private async waitForNodes(deadline: number, services: OnionServiceSpec[]): Promise<void> {
    // What each node is waiting on, for the timeout message.
    const status = new Map<string, string>();
    const waiters = this.plans.map(async (p) => {
      const control = await this.connectWhenUp(p, deadline, status);
      try {
        if (p.role === "client" || p.role === "onion-host") {
          for (;;) {
            await this.assertRunning(p);
            const phase = await control.bootstrapPhase();
            status.set(p.name, `bootstrap ${phase.progress}% (${phase.tag}: ${phase.summary})`);
            if (phase.progress >= 100) break;
            this.checkDeadline(deadline);
            await sleep(CONTROL_POLL_MS);
          }
        }
        if (p.role === "client") await this.waitForRelays(p, control, deadline, status);
        if (p.role === "onion-host") await this.publishOnions(p, control, services, deadline, status);
        status.set(p.name, "ready");
        this.options.log?.(`${p.name} ready`);
      } finally {
        control.close();
      }
    });
    let results = await Promise.allSettled(waiters);
    if (results.every((r) => r.status === "fulfilled")) {
      // Having the exits' descriptors is not yet having a working exit circuit, and an uploaded
      // descriptor is not yet a reachable onion (the client may compute a different HSDir set
      // until its consensus catches up). Probe both from every client so that "ready" means the
      // first request works, and bootstrapMs says when that was.
      const clients = this.plans.filter((p) => p.role === "client");
      const probed = await Promise.allSettled(
        clients.map(async (c) => {
          await this.probe(c, "exit", "127.0.0.1", this.probeTargetPort, deadline, status);
          for (const o of this.onions.values())
            await this.probe(c, `onion ${o.name}`, o.hostname, PROBE_PORT, deadline, status);
        }),
      );
      const byName = new Map(clients.map((c, i) => [c.name, probed[i]]));
      results = this.plans.map((p) => byName.get(p.name) ?? { status: "fulfilled", value: undefined });
    }
    const crashed = results.find(
      (r): r is PromiseRejectedResult =>
        r.status === "rejected" && !(r.reason instanceof Error && r.reason.message === "deadline"),
    );
    if (crashed) throw crashed.reason;
    const failed = this.plans.filter((_p, i) => results[i].status === "rejected");
    if (failed.length > 0) {
      const detail = await Promise.all(
        failed.map(
          async (p) =>
            `${p.name} (${p.role}): ${status.get(p.name) ?? "no status"}; log: ${await tail(join(p.dataDir, "notice.log"), 8)}`,
        ),
      );
      throw new PetraError(
        "TOR_BOOTSTRAP_TIMEOUT",
        `tor network not ready after ${this.options.bootstrapTimeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS} ms: ${failed.map((p) => p.name).join(", ")}\n${detail.join("\n")}\nevery node's log is kept in ${this.dir}`,
        { nodes: failed.map((p) => p.name), dataDir: this.dir },
      );
    }
  }

  /**
   * A client at 100% may still lack the exits: they publish a consensus round later, and the
   * client then needs their full descriptors (it reads exit policies from those, since
   * UseMicrodescriptors is 0). Until it has them it answers "All routers are down or won't exit"
   * and the first request hangs. So wait until every relay is Running in the client's consensus,
   * every exit has the Exit flag, and the client holds each relay's descriptor.
   */
  private async waitForRelays(
    p: NodePlan,
    control: TorControl,
    deadline: number,
    status: Map<string, string>,
  ): Promise<void> {
    const relays = this.plans.filter((q) => q.fingerprint);
    const haveDescriptor = new Set<string>();
    for (;;) {
      await this.assertRunning(p);
      let missing: string[] = relays.map((q) => q.name);
      try {
        const flags = parseConsensus(await control.getInfo("ns/all"));
        for (const q of relays) {
          if (haveDescriptor.has(q.name)) continue;
          const desc = await control.getInfo(`desc/id/${q.fingerprint}`).catch(() => "");
          // An exit's descriptor counts once it carries the exit policy (not an older reject-all one).
          const policy = q.address === "127.0.0.1" ? "accept 127.0.0.0/8:*" : "accept *:*";
          if (desc !== "" && (q.role !== "exit" || desc.includes(policy))) haveDescriptor.add(q.name);
        }
        missing = relays
          .filter((q) => {
            const f = flags.get(q.fingerprint!);
            const flagged = f?.includes("Running") && (q.role !== "exit" || f.includes("Exit"));
            return !flagged || !haveDescriptor.has(q.name);
          })
          .map((q) => q.name);
      } catch {
        // no consensus yet
      }
      status.set(p.name, `relays not yet usable (consensus flags or descriptor missing): ${missing.join(",")}`);
      if (missing.length === 0) return;
      this.checkDeadline(deadline);
      await sleep(500);
    }
  }

  /** Opens SOCKS connections from client `c` to host:port until one succeeds end to end. */
  private async probe(
    c: NodePlan,
    what: string,
    host: string,
    port: number,
    deadline: number,
    status: Map<string, string>,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.assertRunning(c);
      status.set(c.name, `${what} not reachable yet (attempt ${attempt})`);
      const budget = Math.max(1000, Math.min(15_000, deadline - performance.now()));
      const reply = await socks5Connect(c.socksPort!, host, port, `petra-probe-${attempt}`, budget);
      this.options.log?.(`${c.name}: ${what} probe attempt ${attempt}: SOCKS reply ${reply}`);
      if (reply === 0) return;
      this.checkDeadline(deadline);
      await sleep(500);
    }
  }

  /**
   * Adds the onion services through the control port (ADD_ONION ... Flags=Detach) after the host
   * has bootstrapped, and waits for an HS_DESC UPLOADED event per service. Adding them after
   * SETEVENTS is what makes the wait race-free; with HiddenServiceDir in the torrc the first
   * upload could happen before we listen.
   */
  private async publishOnions(
    p: NodePlan,
    control: TorControl,
    services: OnionServiceSpec[],
    deadline: number,
    status: Map<string, string>,
  ): Promise<void> {
    const uploaded = new Set<string>();
    await control.setEvents(["HS_DESC"], (line) => {
      const m = /^HS_DESC UPLOADED (\S+)/.exec(line);
      if (m) uploaded.add(m[1]);
    });
    for (const s of services) {
      const virtualPort = s.virtualPort ?? s.targetPort;
      const reply = await control.command(
        `ADD_ONION NEW:ED25519-V3 Flags=Detach Port=${virtualPort},127.0.0.1:${s.targetPort} Port=${PROBE_PORT},127.0.0.1:${this.probeTargetPort}`,
      );
      const serviceId = reply.lines.find((l) => l.startsWith("ServiceID="))?.slice("ServiceID=".length);
      const privateKey = reply.lines.find((l) => l.startsWith("PrivateKey="))?.slice("PrivateKey=".length);
      if (!serviceId || !privateKey) {
        throw new PetraError("TOR_CONTROL_FAILED", `ADD_ONION for ${s.name}: unexpected reply`, { reply: reply.lines });
      }
      this.onions.set(s.name, {
        name: s.name,
        hostname: `${serviceId}.onion`,
        virtualPort,
        targetPort: s.targetPort,
        privateKey,
      });
    }
    for (;;) {
      await this.assertRunning(p);
      const pending = [...this.onions.values()].filter((o) => !uploaded.has(o.hostname.replace(/\.onion$/, "")));
      status.set(p.name, `onion descriptors not yet uploaded: ${pending.map((o) => o.name).join(",")}`);
      if (pending.length === 0) return;
      this.checkDeadline(deadline);
      await sleep(CONTROL_POLL_MS);
    }
  }
}

/** Fingerprint (hex) -> flags, from a v3 consensus ("r" and "s" lines). */
function parseConsensus(ns: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of ns.split("\n")) {
    if (line.startsWith("r ")) {
      const identity = line.split(" ")[2];
      current = Buffer.from(identity, "base64").toString("hex").toUpperCase();
    } else if (line.startsWith("s ") && current) {
      out.set(current, line.slice(2).split(" "));
    }
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
