/**
 * Tor for a live run (analysis/live-runner.ts, `petra live --tor` / `--tor-socks`): the Tor side of
 * the run, kept here so the runner only asks for "a transport per household" and "stop".
 *
 * - private (--tor): a TorNetwork on 127.0.0.1 (3 authorities, a relay, 2 exits, `clients` Tor
 *   clients the households share round robin, one onion-service host).
 * - existing (--tor-socks HOST:PORT [--tor-control HOST:PORT]): a Tor client someone else runs. The
 *   onion route then needs its control port: the services are added with ADD_ONION on that client,
 *   without Flags=Detach, so they vanish when this process (and its control connection) ends.
 *
 * Route (--tor-route): "onion" (default) publishes an onion service for the JSON-RPC node, whose
 * target is the run's network observer, so observer.jsonl shows what the node's operator sees
 * behind an onion service, and one for the DSO's ZeroMQ endpoint; in zk runs also one for the
 * relayer (its target is the relayer's observer, the same log) and one for the DSO's allowance
 * desk. Households reach them all by their .onion names and no exit is involved. "exit" sends households to the plain 127.0.0.1 endpoints
 * through exits. Onion is the default because it is the route that also works on the public Tor
 * network (exits there refuse loopback and private destinations) and the one that hides the
 * server's address too; its price is latency (a 6-hop path, twice the exit's, bench/tor.json).
 *
 * Isolation: "pseudonym" (default) gives every Ethereum address a household uses a circuit of its
 * own (TorTransport isolation "address"), plus one per household for what concerns no address;
 * "household" gives each household one circuit for everything.
 *
 * Faults (private network only), scheduled relative to the start of trading: "kill-relay" kills,
 * by PID, the relay that most of the households' live circuits pass through as a middle hop
 * (non-authorities preferred) or as their exit; "restart-onion" removes and re-adds one onion
 * service with the same key (new introduction points, every rendezvous circuit closed). On the
 * command line: parseTorFault ("kill-relay@90s,hop=exit", "restart-onion:rpc@2m").
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { type AddressInfo, createServer, type Server } from "node:net";
import { check, PetraError } from "../../common/errors";
import type { Cancel, Clock } from "../interfaces";
import type { ProsumerRecord } from "../prosumer";
import type { TorTransportConfig, TorTransportStats } from "../transport-tor";
import { socks5Connect } from "./socks-probe";
import { TorControl } from "./tor-control";
import { type ExistingTorOptions, useExistingTor } from "./tor-existing";
import {
  assertTorInstalled,
  DEFAULT_BOOTSTRAP_TIMEOUT_MS,
  PROBE_PORT,
  type TorClientEndpoint,
  TorNetwork,
} from "./tor-network";

export type TorRoute = "exit" | "onion";
export type LiveTorIsolation = "pseudonym" | "household";
export const ONION_SERVICE_NAMES = ["rpc", "dso", "relayer", "desk"] as const;
export type OnionServiceName = (typeof ONION_SERVICE_NAMES)[number];

export type TorFault =
  /**
   * Kills the relay most live household circuits pass through at that position: "middle" (default)
   * the hops between guard and last hop; "exit" the last hop of exit circuits. In this lab every
   * stream to 127.0.0.1 leaves through one exit (see TorNetwork.exitAddresses), so killing it
   * takes the exit route down until the directory drops it. `directory` "drops" (default): the
   * authorities stop listing it from their next vote (TorNetwork.dropFromConsensus), as the public
   * network's do once their reachability tests fail; "keeps": they go on listing it as Running,
   * the lab's default (AssumeReachable), and clients keep choosing the dead relay.
   */
  | { kind: "kill-relay"; atMs: number; hop?: "middle" | "exit"; directory?: "drops" | "keeps" }
  | { kind: "restart-onion"; service: OnionServiceName; atMs: number };

export interface LiveTorOptions {
  /** Use this Tor client instead of starting a private network. */
  existing?: ExistingTorOptions;
  /** How households reach the node and the DSO. Default "onion". */
  route?: TorRoute;
  /** Default "pseudonym": a circuit per address; "household": one per household. */
  isolation?: LiveTorIsolation;
  /** Private network: Tor clients the households share round robin. Default 1. */
  clients?: number;
  /**
   * Private network: "shared" (default) puts the exits on 127.0.0.1, so every stream to a lab
   * service leaves through one exit (an exit enclave); "own" gives each exit an address of its own
   * and clients pick any exit, as on the public network (TorNetwork.exitAddresses).
   */
  exitPlacement?: "shared" | "own";
  /** Bootstrap (private) or onion publication (existing) budget, ms. Default DEFAULT_BOOTSTRAP_TIMEOUT_MS (180 000), 240 000 with a hop delay. */
  bootstrapTimeoutMs?: number;
  /**
   * How long a household retries a JSON-RPC request whose stream broke, ms from its first failure.
   * Default 60 000: after a relay dies, clients keep choosing it (their guard's extends fail) until a
   * consensus without it arrives, 10-40 s in the private network.
   */
  retryBudgetMs?: number;
  /** Default "tor" from PATH. */
  torPath?: string;
  /** Private network only. */
  faults?: TorFault[];
}

export interface StartLiveTorOptions {
  tor: LiveTorOptions;
  /** The plain URL households are given for the node (the observer's), e.g. "http://127.0.0.1:P". */
  rpcUrl: string;
  /** The plain ZeroMQ endpoint of the DSO, "tcp://127.0.0.1:Q". */
  dsoEndpoint: string;
  /** zk runs: the plain URL households are given for the relayer (its observer's), "http://127.0.0.1:R". */
  relayerUrl?: string;
  /** zk runs: the plain ZeroMQ endpoint of the DSO's allowance desk, "tcp://127.0.0.1:S". */
  deskEndpoint?: string;
  /** One-way delay on every OR link (private network). Default 0. */
  hopDelayMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface TorFaultRecord {
  fault: TorFault;
  /** When it was injected, ms after the start of trading. */
  atMs: number;
  ok: boolean;
  /** What was done: the relay killed (name, role, pid, how many household circuits used it), or the restart time. */
  detail: Record<string, unknown>;
  error?: string;
}

/** What a Tor-mode run lost, and what it recovered (written to summary.json and bench/tor-faults.json). */
export interface TorInventory {
  rpc: {
    requests: number;
    failedAttempts: number;
    /** Requests that failed at least once, then succeeded on a retry over a new stream and circuit. */
    recovered: number;
    /** Requests whose error reached the agent. */
    gaveUp: number;
    /** Requests still being retried when their household ended (its run was over, e.g. the drain timed out). */
    stillRetryingAtEnd: number;
    rawTransactionsAlreadyKnown: number;
    byMethod: Record<string, { failedAttempts: number; recovered: number; gaveUp: number }>;
    /** Households that wrote no transport stats (their process did not end normally). */
    householdsWithoutStats: string[];
  };
  transactions: {
    /** Transactions the households signed and the node accepted (they have a hash). */
    sent: number;
    mined: number;
    /** Sent but in no block of the ledger. */
    lost: string[];
    /** Sends that failed before the node accepted them, by reason. */
    failedBeforeSending: Record<string, number>;
    /** Mined but reverted (lost races on the market, not the network). */
    reverted: number;
  };
  zmq: {
    /**
     * Who answered the withdrawals: the DSO over ZeroMQ, or (zk runs) the household's private
     * withdrawer, whose proofs and relayer calls are not DSO requests: `retried` is 0 then.
     */
    withdrawalsVia: "dso" | "zk";
    withdrawals: number;
    /** Re-sends by the DSO client: a withdrawal answered after k timeouts was sent k + 1 times. */
    retried: number;
    /** Withdrawals that got no answer at all (every attempt timed out). */
    unanswered: number;
    maxAnswerS: number;
  };
  /** Log-filter polls that failed (the household's watcher then recreated its filter; no log is lost). */
  filterPollFailures: number;
}

/** The Tor side of a run as config.json and summary.json record it. */
export interface LiveTorDescription {
  kind: "tor";
  tor: "private" | "existing";
  route: TorRoute;
  isolation: LiveTorIsolation;
  hopDelayMs: number;
  torVersion?: string;
  bootstrapS?: number;
  network?: {
    authorities: number;
    relays: number;
    exits: number;
    exitPlacement: "shared" | "own";
    clients: number;
    onionHosts: number;
  };
  /** Private network: every tor the run started, by PID (all stopped when the run ends). */
  torPids?: number[];
  socks: string[];
  /** Service name -> its .onion hostname (rpc and dso; relayer and desk in zk runs). */
  onionServices?: Partial<Record<OnionServiceName, string>>;
  isolationSalt: string;
  retryBudgetMs: number;
}

const ONION_RPC_PORT = 80;
/** Households' DSO answer timeout in Tor mode (prosumer-process dsoTimeoutMs); the inventory counts retries by it. */
export const TOR_DSO_TIMEOUT_MS = 15_000;

export class LiveTor {
  private readonly timers: Cancel[] = [];
  private readonly faultRuns: Promise<TorFaultRecord>[] = [];
  private stopped = false;

  private constructor(
    readonly description: LiveTorDescription,
    private readonly clients: TorClientEndpoint[],
    private readonly onionRoutes: Record<string, string>,
    private readonly net: TorNetwork | undefined,
    private readonly release: () => Promise<void>,
    private readonly faults: TorFault[],
    private readonly log: (line: string) => void,
  ) {}

  /** Checks the options, starts or attaches to Tor and publishes the onion services; throws with everything stopped. */
  static async start(o: StartLiveTorOptions): Promise<LiveTor> {
    const t = o.tor;
    const route = t.route ?? "onion";
    const isolation = t.isolation ?? "pseudonym";
    const hopDelayMs = o.hopDelayMs ?? 0;
    const faults = t.faults ?? [];
    const log = o.log ?? (() => {});
    validateLiveTorOptions(t);
    const rpc = new URL(o.rpcUrl);
    const dso = /^tcp:\/\/(127\.\d+\.\d+\.\d+):(\d+)$/.exec(o.dsoEndpoint);
    check(dso !== null, "dsoEndpoint", `must be tcp://127.x.y.z:PORT, got "${o.dsoEndpoint}"`);
    if (route === "onion") {
      check(
        rpc.protocol === "http:" && rpc.hostname.startsWith("127."),
        "tor.route",
        `"onion" publishes the node as an onion service, so the node must be local (http://127.x.y.z), got ${o.rpcUrl}; use route "exit" for a remote node`,
      );
    }
    const services = onionServicePlan(o);
    const isolationSalt = randomBytes(8).toString("hex");
    const retryBudgetMs = t.retryBudgetMs ?? 60_000;
    const bootstrapTimeoutMs = t.bootstrapTimeoutMs ?? (hopDelayMs > 0 ? 240_000 : DEFAULT_BOOTSTRAP_TIMEOUT_MS);
    const base = { kind: "tor" as const, route, isolation, hopDelayMs, isolationSalt, retryBudgetMs };

    if (!t.existing) {
      const torVersion = assertTorInstalled({ torPath: t.torPath });
      const clients = t.clients ?? 1;
      const net = await TorNetwork.start({
        clients,
        hopDelayMs,
        ...(t.exitPlacement ? { exitPlacement: t.exitPlacement } : {}),
        torPath: t.torPath,
        bootstrapTimeoutMs,
        signal: o.signal,
        log,
        onionServices:
          route === "onion"
            ? services.map((s) => ({ name: s.name, targetPort: s.targetPort, virtualPort: s.virtualPort }))
            : [],
      });
      const onions =
        route === "onion" ? Object.fromEntries(services.map((s) => [s.name, net.onion(s.name).hostname])) : undefined;
      return new LiveTor(
        {
          ...base,
          tor: "private",
          torVersion,
          bootstrapS: net.bootstrapMs / 1000,
          network: {
            authorities: 3,
            relays: 1,
            exits: 2,
            exitPlacement: t.exitPlacement ?? "shared",
            clients,
            onionHosts: route === "onion" ? 1 : 0,
          },
          torPids: net.nodes.map((n) => n.pid),
          socks: net.clients.map((c) => `${c.socksHost}:${c.socksPort}`),
          ...(onions ? { onionServices: onions } : {}),
        },
        net.clients,
        onions ? onionRoutesFor(services, onions) : {},
        net,
        () => net.stop(),
        faults,
        log,
      );
    }

    const client = await useExistingTor(t.existing);
    if (route === "exit") {
      log(`existing Tor client at ${t.existing.socks}, route exit (exits on the public Tor network refuse loopback)`);
      return new LiveTor(
        { ...base, tor: "existing", socks: [t.existing.socks] },
        [client],
        {},
        undefined,
        async () => undefined,
        faults,
        log,
      );
    }
    const published = await publishOnExisting(client, services, bootstrapTimeoutMs, o.signal, log);
    return new LiveTor(
      { ...base, tor: "existing", socks: [t.existing.socks], onionServices: published.onions },
      [client],
      onionRoutesFor(services, published.onions),
      undefined,
      published.release,
      faults,
      log,
    );
  }

  /** The transport config of household number `index` (0-based). */
  householdTransport(index: number, statsFile?: string): TorTransportConfig {
    const c = this.clients[index % this.clients.length] as TorClientEndpoint;
    return {
      kind: "tor",
      socksHost: c.socksHost,
      socksPort: c.socksPort,
      onionRoutes: this.onionRoutes,
      isolationSalt: this.description.isolationSalt,
      isolation: this.description.isolation === "pseudonym" ? "address" : "identity",
      retryBudgetMs: this.description.retryBudgetMs,
      ...(statsFile ? { statsFile } : {}),
    };
  }

  /** Schedules the faults relative to `startAtMs` (the start of trading, on `clock`). */
  scheduleFaults(startAtMs: number, clock: Clock): void {
    for (const fault of this.faults) {
      this.timers.push(
        clock.schedule(startAtMs + fault.atMs, () => {
          const atMs = clock.now() - startAtMs;
          this.faultRuns.push(
            this.inject(fault).then(
              (detail): TorFaultRecord => ({ fault, atMs, ok: true, detail }),
              (e): TorFaultRecord => ({
                fault,
                atMs,
                ok: false,
                detail: {},
                error: String((e as Error)?.message ?? e),
              }),
            ),
          );
        }),
      );
    }
  }

  /** The faults injected (waits for those under way); faults not yet due are cancelled and left out. */
  async faultRecords(): Promise<TorFaultRecord[]> {
    for (const t of this.timers) t.cancel();
    return Promise.all(this.faultRuns);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) t.cancel();
    await this.release();
  }

  private async inject(fault: TorFault): Promise<Record<string, unknown>> {
    const net = this.net;
    if (!net) throw new PetraError("INVALID_ARGUMENT", "tor.faults: faults need the private Tor network");
    switch (fault.kind) {
      case "kill-relay": {
        const victim = await busiestRelay(net, fault.hop ?? "middle");
        await net.killNode(victim.name);
        const drops = (fault.directory ?? "drops") === "drops";
        if (drops) await net.dropFromConsensus(victim.name);
        this.log(
          `fault: killed ${victim.name} (${victim.role}, pid ${victim.pid}), on ${victim.circuitsThrough} of ${victim.householdCircuits} household circuits`,
        );
        return { ...victim, directory: drops ? "drops" : "keeps" };
      }
      case "restart-onion": {
        const ms = await net.restartOnionService(fault.service);
        this.log(`fault: onion service ${fault.service} restarted, new descriptor uploaded in ${Math.round(ms)} ms`);
        return { service: fault.service, republishedMs: Math.round(ms) };
      }
      default: {
        const never: never = fault;
        throw new PetraError("INVALID_ARGUMENT", `tor.faults: unknown fault ${JSON.stringify(never)}`);
      }
    }
  }
}

const FAULT_SYNTAX = "kill-relay@TIME[,hop=middle|exit][,directory=drops|keeps] or restart-onion:SERVICE@TIME";

/**
 * A fault as the command line writes it (`petra live --tor --tor-fault ...`), TIME after the start
 * of trading with a unit, ms, s or m:
 *
 *   kill-relay@90s                       the busiest middle relay, dropped from the directory
 *   kill-relay@90s,hop=exit,directory=keeps
 *   restart-onion:rpc@2m                 also dso, relayer, desk (zk runs)
 *
 * Throws INVALID_ARGUMENT naming the part that is wrong.
 */
export function parseTorFault(text: string): TorFault {
  const fail = (part: string, why: string): never => {
    throw new PetraError("INVALID_ARGUMENT", `--tor-fault "${text}": ${part}: ${why} (syntax: ${FAULT_SYNTAX})`, {
      parameter: "--tor-fault",
      part,
    });
  };
  const [head = "", ...options] = text.trim().split(",");
  const at = head.lastIndexOf("@");
  if (at < 0) fail(head || "(empty)", "needs @TIME, e.g. kill-relay@90s");
  const what = head.slice(0, at);
  const time = head.slice(at + 1);
  const t = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(time);
  if (!t) fail(`@${time}`, "TIME must be a number with a unit ms, s or m, e.g. 90s");
  const atMs = Math.round(Number(t?.[1]) * { ms: 1, s: 1000, m: 60_000 }[t?.[2] as "ms" | "s" | "m"]);
  const [kind, service, ...extra] = what.split(":");
  if (kind === "kill-relay") {
    if (service !== undefined) fail(what, "kill-relay takes no :SERVICE (it picks the busiest relay)");
    const fault: Extract<TorFault, { kind: "kill-relay" }> = { kind: "kill-relay", atMs };
    for (const option of options) {
      const [key, value, ...more] = option.split("=");
      if (more.length > 0 || value === undefined) fail(option, "options are KEY=VALUE");
      if (key === "hop") {
        if (value !== "middle" && value !== "exit") fail(option, 'hop must be "middle" or "exit"');
        fault.hop = value as "middle" | "exit";
      } else if (key === "directory") {
        if (value !== "drops" && value !== "keeps") fail(option, 'directory must be "drops" or "keeps"');
        fault.directory = value as "drops" | "keeps";
      } else {
        fail(option, "unknown option (kill-relay takes hop= and directory=)");
      }
    }
    return fault;
  }
  if (kind === "restart-onion") {
    if (service === undefined || extra.length > 0)
      fail(what, `needs one service: restart-onion:${ONION_SERVICE_NAMES.join("|")}`);
    if (!(ONION_SERVICE_NAMES as readonly string[]).includes(service as string))
      fail(service as string, `unknown onion service, must be ${ONION_SERVICE_NAMES.join(", ")}`);
    if (options.length > 0) fail(options.join(","), "restart-onion takes no options");
    return { kind: "restart-onion", service: service as OnionServiceName, atMs };
  }
  return fail(kind || "(empty)", 'unknown fault, must be "kill-relay" or "restart-onion"');
}

/** Throws INVALID_ARGUMENT naming the option when the Tor options do not fit together. */
export function validateLiveTorOptions(t: LiveTorOptions): void {
  check(
    t.route === undefined || t.route === "exit" || t.route === "onion",
    "tor.route",
    `must be "exit" or "onion", got "${t.route}"`,
  );
  check(
    t.isolation === undefined || t.isolation === "pseudonym" || t.isolation === "household",
    "tor.isolation",
    `must be "pseudonym" or "household", got "${t.isolation}"`,
  );
  check(
    t.clients === undefined || (Number.isInteger(t.clients) && t.clients >= 1),
    "tor.clients",
    "must be an integer >= 1",
  );
  check(
    t.exitPlacement === undefined || t.exitPlacement === "shared" || t.exitPlacement === "own",
    "tor.exitPlacement",
    `must be "shared" or "own", got "${t.exitPlacement}"`,
  );
  if (t.existing) {
    check(t.clients === undefined, "tor.clients", "applies to the private network only, not to --tor-socks");
    check(
      t.exitPlacement === undefined,
      "tor.exitPlacement",
      "applies to the private network only, not to --tor-socks",
    );
    check(
      (t.route ?? "onion") === "exit" || t.existing.control !== undefined,
      "tor.existing.control",
      "the onion route publishes onion services through the client's control port: give --tor-control, or use --tor-route exit",
    );
    check((t.faults ?? []).length === 0, "tor.faults", "need the private Tor network (--tor), not --tor-socks");
  }
  for (const f of t.faults ?? []) {
    check(Number.isFinite(f.atMs) && f.atMs >= 0, "tor.faults.atMs", "must be >= 0 ms after the start of trading");
    if (f.kind === "kill-relay") {
      check(
        f.hop === undefined || f.hop === "middle" || f.hop === "exit",
        "tor.faults.hop",
        'must be "middle" or "exit"',
      );
      check(
        f.directory === undefined || f.directory === "drops" || f.directory === "keeps",
        "tor.faults.directory",
        'must be "drops" or "keeps"',
      );
    }
    if (f.kind === "restart-onion") {
      check((t.route ?? "onion") === "onion", "tor.faults", "restart-onion needs the onion route");
      check(
        (ONION_SERVICE_NAMES as readonly string[]).includes(f.service),
        "tor.faults.service",
        `must be ${ONION_SERVICE_NAMES.join(", ")}, got "${f.service}"`,
      );
    }
  }
}

/** An onion service of the run: what households are given (`plain`), and what the service forwards. */
interface OnionServicePlan {
  name: OnionServiceName;
  /** The plain endpoint households are configured with: an http URL (no path) or tcp://127.x.y.z:P. */
  plain: string;
  scheme: "http" | "tcp";
  targetPort: number;
  virtualPort: number;
}

/** The run's onion services: the node and the DSO, and in zk runs the relayer and the allowance desk. */
function onionServicePlan(o: StartLiveTorOptions): OnionServicePlan[] {
  const http = (name: OnionServiceName, url: string): OnionServicePlan => {
    const u = new URL(url);
    return {
      name,
      plain: url.replace(/\/+$/, ""),
      scheme: "http",
      targetPort: Number(u.port || 80),
      virtualPort: ONION_RPC_PORT,
    };
  };
  const tcp = (name: OnionServiceName, endpoint: string): OnionServicePlan => {
    const m = /^tcp:\/\/(127\.\d+\.\d+\.\d+):(\d+)$/.exec(endpoint);
    check(
      m !== null,
      name === "dso" ? "dsoEndpoint" : "deskEndpoint",
      `must be tcp://127.x.y.z:PORT, got "${endpoint}"`,
    );
    const port = Number(m![2]);
    return { name, plain: endpoint, scheme: "tcp", targetPort: port, virtualPort: port };
  };
  const plan = [http("rpc", o.rpcUrl), tcp("dso", o.dsoEndpoint)];
  if (o.relayerUrl !== undefined) {
    check(
      /^http:\/\/127\.\d+\.\d+\.\d+:\d+\/?$/.test(o.relayerUrl),
      "relayerUrl",
      `must be http://127.x.y.z:PORT, got "${o.relayerUrl}"`,
    );
    plan.push(http("relayer", o.relayerUrl));
  }
  if (o.deskEndpoint !== undefined) plan.push(tcp("desk", o.deskEndpoint));
  return plan;
}

function onionRoutesFor(
  services: readonly OnionServicePlan[],
  onions: Partial<Record<OnionServiceName, string>>,
): Record<string, string> {
  return Object.fromEntries(
    services.map((s) => [s.plain, `${s.scheme}://${onions[s.name] as string}:${s.virtualPort}`]),
  );
}

/**
 * The relay most live household circuits pass through at `hop`: a middle hop (between guard and
 * last hop; non-authorities first), or the last hop of exit (non-onion) circuits.
 */
async function busiestRelay(
  net: TorNetwork,
  hop: "middle" | "exit",
): Promise<{
  hop: "middle" | "exit";
  name: string;
  role: string;
  pid: number;
  fingerprint: string;
  circuitsThrough: number;
  householdCircuits: number;
}> {
  const counts = new Map<string, number>();
  let householdCircuits = 0;
  for (const client of net.nodes.filter((n) => n.role === "client")) {
    const control = await net.control(client.name);
    try {
      for (const c of await control.circuitStatus()) {
        // TorTransport's SOCKS usernames start with "p-"; the launcher's probes use "petra-probe-".
        if (c.status !== "BUILT" || !c.socksUsername?.startsWith("p-")) continue;
        householdCircuits++;
        const onion = c.purpose?.startsWith("HS_") === true;
        const hops = hop === "middle" ? c.path.slice(1, -1) : onion ? [] : c.path.slice(-1);
        for (const h of hops) counts.set(h.toUpperCase(), (counts.get(h.toUpperCase()) ?? 0) + 1);
      }
    } finally {
      control.close();
    }
  }
  const relays = net.nodes.filter((n) => n.fingerprint && n.pid > 0 && counts.has(n.fingerprint.toUpperCase()));
  if (relays.length === 0) {
    throw new PetraError("INVALID_ARGUMENT", `kill-relay: no household circuit has a ${hop} hop right now`, {
      householdCircuits,
    });
  }
  const score = (n: (typeof relays)[number]) =>
    (counts.get((n.fingerprint as string).toUpperCase()) ?? 0) + (n.role === "authority" ? 0 : 1_000);
  const victim = relays.sort((a, b) => score(b) - score(a))[0] as (typeof relays)[number];
  return {
    hop,
    name: victim.name,
    role: victim.role,
    pid: victim.pid,
    fingerprint: victim.fingerprint as string,
    circuitsThrough: counts.get((victim.fingerprint as string).toUpperCase()) ?? 0,
    householdCircuits,
  };
}

/**
 * ADD_ONION on an existing client for the run's services, waits for their descriptors and for the
 * services to answer through that client's SOCKS port. The control connection stays open: tor
 * removes the services when it closes (release(), or this process ending).
 */
async function publishOnExisting(
  client: TorClientEndpoint,
  services: readonly OnionServicePlan[],
  timeoutMs: number,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
): Promise<{ onions: Partial<Record<OnionServiceName, string>>; release: () => Promise<void> }> {
  if (!client.control) {
    throw new PetraError("INVALID_ARGUMENT", "tor.existing.control: the onion route needs the control port");
  }
  const control = await TorControl.connect(client.control);
  // The reachability probe needs a listener that answers, as in the private network's launcher.
  const probe: Server = createServer((s) => s.end());
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
  const probePort = (probe.address() as AddressInfo).port;
  const release = async () => {
    control.close();
    await new Promise<void>((r) => probe.close(() => r()));
  };
  try {
    const uploaded = new Set<string>();
    await control.setEvents(["HS_DESC"], (line) => {
      const m = /^HS_DESC UPLOADED (\S+)/.exec(line);
      if (m) uploaded.add(m[1] as string);
    });
    const add = async (virtualPort: number, targetPort: number) => {
      const reply = await control.command(
        `ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=${virtualPort},127.0.0.1:${targetPort} Port=${PROBE_PORT},127.0.0.1:${probePort}`,
      );
      const id = reply.lines.find((l) => l.startsWith("ServiceID="))?.slice("ServiceID=".length);
      if (!id)
        throw new PetraError("TOR_CONTROL_FAILED", "ADD_ONION: no ServiceID in the reply", { reply: reply.lines });
      return id;
    };
    const ids: Partial<Record<OnionServiceName, string>> = {};
    for (const s of services) ids[s.name] = await add(s.virtualPort, s.targetPort);
    const t0 = performance.now();
    const late = () => {
      if (signal?.aborted) throw new PetraError("PROCESS_FAILED", "onion publication aborted by its caller");
      if (performance.now() - t0 > timeoutMs) {
        throw new PetraError(
          "TOR_BOOTSTRAP_TIMEOUT",
          `onion services not reachable through the existing Tor client within ${timeoutMs} ms`,
          { services: ids, uploaded: [...uploaded] },
        );
      }
    };
    while (Object.values(ids).some((id) => !uploaded.has(id))) {
      late();
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const id of Object.values(ids) as string[]) {
      for (let attempt = 1; ; attempt++) {
        const reply = await socks5Connect(
          client.socksPort,
          `${id}.onion`,
          PROBE_PORT,
          `petra-probe-${attempt}`,
          15_000,
        );
        if (reply === 0) break;
        late();
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    log(`onion services published on the existing Tor client in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return { onions: Object.fromEntries(Object.entries(ids).map(([n, id]) => [n, `${id}.onion`])), release };
  } catch (e) {
    await release();
    throw e;
  }
}

/**
 * What the run lost and recovered, from the households' records, their transport stats and logs,
 * and the ledger's transaction hashes.
 */
export function torInventory(input: {
  records: readonly (ProsumerRecord & { household: string })[];
  minedTxHashes: ReadonlySet<string>;
  revertedTxHashes: ReadonlySet<string>;
  /** household id -> its transport's stats file (may be missing). */
  statsFiles: ReadonlyMap<string, string>;
  /** household id -> its log file. */
  logFiles: ReadonlyMap<string, string>;
  dsoTimeoutMs: number;
  /** Default "dso". */
  withdrawalsVia?: "dso" | "zk";
}): TorInventory {
  const via = input.withdrawalsVia ?? "dso";
  const rpc: TorInventory["rpc"] = {
    requests: 0,
    failedAttempts: 0,
    recovered: 0,
    gaveUp: 0,
    stillRetryingAtEnd: 0,
    rawTransactionsAlreadyKnown: 0,
    byMethod: {},
    householdsWithoutStats: [],
  };
  for (const [household, file] of input.statsFiles) {
    if (!fs.existsSync(file)) {
      rpc.householdsWithoutStats.push(household);
      continue;
    }
    const s = JSON.parse(fs.readFileSync(file, "utf8")) as TorTransportStats;
    rpc.requests += s.requests;
    rpc.failedAttempts += s.failedAttempts;
    rpc.recovered += s.recovered;
    rpc.gaveUp += s.gaveUp;
    rpc.stillRetryingAtEnd += s.retrying ?? 0;
    rpc.rawTransactionsAlreadyKnown += s.rawTransactionsAlreadyKnown;
    for (const [m, c] of Object.entries(s.byMethod)) {
      rpc.byMethod[m] ??= { failedAttempts: 0, recovered: 0, gaveUp: 0 };
      const t = rpc.byMethod[m];
      t.failedAttempts += c.failedAttempts;
      t.recovered += c.recovered;
      t.gaveUp += c.gaveUp;
    }
  }
  const txs = input.records.filter(
    (r): r is Extract<ProsumerRecord, { kind: "tx" }> & { household: string } => r.kind === "tx",
  );
  const sent = txs.filter((r) => r.txHash !== undefined);
  const failedBeforeSending: Record<string, number> = {};
  for (const r of txs.filter((x) => x.txHash === undefined)) {
    const reason = (r.reason ?? "unknown").replace(/0x[0-9a-fA-F]+/g, "0x…").slice(0, 120);
    failedBeforeSending[reason] = (failedBeforeSending[reason] ?? 0) + 1;
  }
  const hash = (h: string | undefined) => (h ?? "").toLowerCase();
  const withdrawals = input.records.filter(
    (r): r is Extract<ProsumerRecord, { kind: "withdraw" }> & { household: string } => r.kind === "withdraw",
  );
  let filterPollFailures = 0;
  for (const file of input.logFiles.values()) {
    if (fs.existsSync(file))
      filterPollFailures += (fs.readFileSync(file, "utf8").match(/log filter poll failed/g) ?? []).length;
  }
  return {
    rpc,
    transactions: {
      sent: sent.length,
      mined: sent.filter((r) => input.minedTxHashes.has(hash(r.txHash))).length,
      lost: sent.filter((r) => !input.minedTxHashes.has(hash(r.txHash))).map((r) => r.txHash as string),
      failedBeforeSending,
      reverted: sent.filter((r) => input.revertedTxHashes.has(hash(r.txHash))).length,
    },
    zmq: {
      withdrawalsVia: via,
      withdrawals: withdrawals.length,
      retried:
        via === "dso" ? withdrawals.reduce((n, w) => n + Math.floor((w.doneAtMs - w.atMs) / input.dsoTimeoutMs), 0) : 0,
      unanswered: withdrawals.filter((w) => !w.ok && /no answer from the DSO/.test(w.reason ?? "")).length,
      maxAnswerS: withdrawals.reduce((m, w) => Math.max(m, (w.doneAtMs - w.atMs) / 1000), 0),
    },
    filterPollFailures,
  };
}
