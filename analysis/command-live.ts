import { Command, InvalidArgumentError } from "commander";
import { type LiveTorOptions, parseTorFault, type TorFault } from "../agents/tor/live-tor";
import { PetraError } from "../common/errors";
import { parsePositiveInt, resolveOut, withOut, withScenario, withSeed } from "./cli-options";
import { parseBlockSetting } from "./live-blocks";
import { runLive } from "./live-runner";

function parseBlocks(value: string): string {
  try {
    parseBlockSetting(value, "--blocks");
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

function parseNonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be an integer >= 0, got "${value}"`);
    return n;
  };
}

function parseChoice<T extends string>(name: string, choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`${name} must be ${choices.join(" or ")}, got "${value}"`);
    return value as T;
  };
}

function parseHostPort(name: string): (value: string) => string {
  return (value) => {
    if (!/^[^:\s]+:\d{1,5}$/.test(value)) throw new InvalidArgumentError(`${name} must be HOST:PORT, got "${value}"`);
    return value;
  };
}

interface TorFlags {
  tor?: boolean;
  torSocks?: string;
  torControl?: string;
  torPassword?: string;
  torCookie?: string;
  torRoute?: "exit" | "onion";
  torIsolation?: "pseudonym" | "household";
  torClients?: number;
  torExits?: "shared" | "own";
  /** Parsed --tor-fault values (repeatable). */
  torFault?: TorFault[];
}

/** Commander's parser for the repeatable --tor-fault: each value parsed at once, so a bad one names itself. */
function collectTorFault(value: string, previous: TorFault[] | undefined): TorFault[] {
  try {
    return [...(previous ?? []), parseTorFault(value)];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** A PetraError, not commander's InvalidArgumentError: thrown from an action, commander would not print the latter. */
function torFlagError(message: string): PetraError {
  return new PetraError("INVALID_ARGUMENT", message, { parameter: message.split(" ")[0] });
}

/** The Tor options the flags ask for, or undefined for a direct run; flags that need Tor without it are an error. */
export function torOptionsFromFlags(f: TorFlags): LiveTorOptions | undefined {
  const torOnly = (
    [
      ["--tor-control", f.torControl],
      ["--tor-password", f.torPassword],
      ["--tor-cookie", f.torCookie],
      ["--tor-route", f.torRoute],
      ["--tor-isolation", f.torIsolation],
      ["--tor-clients", f.torClients],
      ["--tor-exits", f.torExits],
      ["--tor-fault", f.torFault?.length ? f.torFault : undefined],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (!f.tor && !f.torSocks) {
    if (torOnly.length > 0)
      throw torFlagError(
        `${torOnly.map(([n]) => n).join(", ")} ${torOnly.length === 1 ? "needs" : "need"} --tor or --tor-socks HOST:PORT`,
      );
    return undefined;
  }
  if (f.torSocks === undefined) {
    for (const [name, value] of torOnly)
      if (["--tor-control", "--tor-password", "--tor-cookie"].includes(name) && value !== undefined)
        throw torFlagError(`${name} belongs to an existing Tor client: give --tor-socks HOST:PORT too`);
  } else if (f.torClients !== undefined) {
    throw torFlagError("--tor-clients applies to the private network (--tor), not to --tor-socks");
  } else if (f.torExits !== undefined) {
    throw torFlagError("--tor-exits applies to the private network (--tor), not to --tor-socks");
  } else if (f.torFault?.length) {
    throw torFlagError(
      "--tor-fault needs the private network (--tor), not --tor-socks: it kills relays and restarts onion services",
    );
  }
  return {
    ...(f.torSocks
      ? {
          existing: {
            socks: f.torSocks,
            ...(f.torControl ? { control: f.torControl } : {}),
            ...(f.torPassword ? { password: f.torPassword } : {}),
            ...(f.torCookie ? { cookiePath: f.torCookie } : {}),
          },
        }
      : {}),
    ...(f.torRoute ? { route: f.torRoute } : {}),
    ...(f.torIsolation ? { isolation: f.torIsolation } : {}),
    ...(f.torClients ? { clients: f.torClients } : {}),
    ...(f.torExits ? { exitPlacement: f.torExits } : {}),
    ...(f.torFault?.length ? { faults: f.torFault } : {}),
  };
}

export function liveCommand(): Command {
  const cmd = new Command("live").description(
    "run a scenario live: a JSON-RPC node, the DSO and one process per household over ZeroMQ on loopback; writes the run directory",
  );
  withSeed(withScenario(withOut(cmd, "runs/live"), "case-study-9"))
    .option(
      "--rpc <url>",
      "use this JSON-RPC node instead of starting hardhat node (its default dev accounts must be funded)",
    )
    .option("--node <kind>", "node to start when --rpc is not given: hardhat or anvil", "hardhat")
    .option("--intervals <n>", "trade only the first N intervals of the scenario", parsePositiveInt("--intervals"))
    .option(
      "--households <n>",
      "run only the scenario's first N households (one process each)",
      parsePositiveInt("--households"),
    )
    .option(
      "--interval-ms <ms>",
      "wall length of one trading interval (default: the scenario's)",
      parsePositiveInt("--interval-ms"),
    )
    .option(
      "--blocks <mode>",
      'block production: "automine", "fixed:MS" or "exp:MEAN_MS" (default: the scenario\'s)',
      parseBlocks,
    )
    .option(
      "--hop-delay-ms <ms>",
      "one-way delay on every network link households use: to the node, to the DSO, and with Tor every relay link (default 0)",
      parseNonNegativeInt("--hop-delay-ms"),
    )
    .option(
      "--tor",
      "households over a private Tor network the run starts on 127.0.0.1 (needs Debian's tor): onion services for the node and the DSO (and in zk runs the relayer and the allowance desk), one circuit per pseudonym",
    )
    .option(
      "--tor-socks <host:port>",
      "households over an existing Tor client instead (e.g. 127.0.0.1:9050); the onion route also needs --tor-control",
      parseHostPort("--tor-socks"),
    )
    .option(
      "--tor-control <host:port>",
      "control port of the --tor-socks client (e.g. 127.0.0.1:9051): publishes the onion services",
      parseHostPort("--tor-control"),
    )
    .option("--tor-password <password>", "control port password (HashedControlPassword) of the --tor-socks client")
    .option("--tor-cookie <file>", "control auth cookie of the --tor-socks client, if tor does not report its path")
    .option(
      "--tor-route <route>",
      'how households reach the node and the DSO: "onion" (their onion services, default) or "exit" (through exits to 127.0.0.1)',
      parseChoice("--tor-route", ["exit", "onion"] as const),
    )
    .option(
      "--tor-isolation <level>",
      '"pseudonym" (a circuit per address a household uses, default) or "household" (one circuit per household)',
      parseChoice("--tor-isolation", ["pseudonym", "household"] as const),
    )
    .option(
      "--tor-clients <n>",
      "Tor clients in the private network, shared by the households round robin (default 1)",
      parsePositiveInt("--tor-clients"),
    )
    .option(
      "--tor-exits <placement>",
      'private network: "shared" (default: exits on 127.0.0.1, so every stream to a lab service leaves through one exit) or "own" (each exit on an address of its own; clients use any exit)',
      parseChoice("--tor-exits", ["shared", "own"] as const),
    )
    .option(
      "--tor-fault <fault>",
      "inject a fault into the private network (--tor), TIME after trading starts (ms, s or m); repeatable: " +
        '"kill-relay@90s[,hop=middle|exit][,directory=drops|keeps]" kills the relay most household circuits use ' +
        "(directory=keeps: the authorities go on listing it), " +
        '"restart-onion:SERVICE@120s" restarts the rpc, dso, relayer or desk onion service with the same key; ' +
        "summary.json records what was lost",
      collectTorFault,
    )
    .action(
      async (
        opts: {
          out: string;
          scenario: string;
          seed: number;
          rpc?: string;
          node: string;
          intervals?: number;
          households?: number;
          intervalMs?: number;
          blocks?: string;
          hopDelayMs?: number;
        } & TorFlags,
      ) => {
        if (opts.node !== "hardhat" && opts.node !== "anvil")
          throw new PetraError("INVALID_ARGUMENT", `--node must be hardhat or anvil, got "${opts.node}"`, {
            parameter: "--node",
          });
        const tor = torOptionsFromFlags(opts);
        const outDir = resolveOut(opts.out);
        const summary = await runLive({
          scenario: opts.scenario,
          outDir,
          seed: opts.seed,
          rpcUrl: opts.rpc,
          node: opts.node,
          intervals: opts.intervals,
          households: opts.households,
          intervalMs: opts.intervalMs,
          blocks: opts.blocks,
          ...(opts.hopDelayMs !== undefined ? { hopDelayMs: opts.hopDelayMs } : {}),
          ...(tor ? { tor } : {}),
          log: (l) => console.log(l),
        });
        console.log(`run directory: ${outDir}`);
        const t = summary.transport;
        if (t?.kind === "tor") {
          const inv = t.inventory;
          console.log(
            `Tor: ${t.tor}, route ${t.route}, isolation ${t.isolation}; observer saw ${t.observedSourceAddresses.join(", ") || "nothing"}; RPC ${inv.rpc.requests} requests, ${inv.rpc.failedAttempts} failed attempts, ${inv.rpc.recovered} recovered, ${inv.rpc.gaveUp} given up; transactions ${inv.transactions.mined}/${inv.transactions.sent} mined, ${inv.transactions.lost.length} lost; DSO re-sends ${inv.zmq.retried}`,
          );
        }
        if (!summary.conservation.energyConserved || !summary.conservation.moneyConserved) {
          console.log("WARNING: conservation check failed, see summary.json");
        }
      },
    );
  return cmd;
}
