/**
 * A `hardhat node` subprocess on 127.0.0.1 and a free port: the live-mode JSON-RPC chain for
 * tests and benches that need real sockets. Started detached (own process group) and stopped by
 * PID; killed on parent exit too.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { PetraError } from "../common/errors";
import { freePorts } from "./free-ports";

export interface RpcNodeOptions {
  /** Default: a free port. */
  port?: number;
  /** Startup budget. Default 60_000 ms (hardhat loads its config through ts-node). */
  timeoutMs?: number;
  /** Project root with hardhat.config.ts. Default: this repository. */
  cwd?: string;
}

export interface RpcNode {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startHardhatNode(options: RpcNodeOptions = {}): Promise<RpcNode> {
  const port = options.port ?? (await freePorts(1))[0];
  const cwd = options.cwd ?? `${__dirname}/..`;
  const hardhatCli = require.resolve("hardhat/internal/cli/cli", { paths: [cwd] });
  const child: ChildProcess = spawn(
    process.execPath,
    [hardhatCli, "node", "--hostname", "127.0.0.1", "--port", String(port)],
    {
      cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new PetraError("PROCESS_FAILED", "could not spawn hardhat node");
  const killAll = () => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  };
  process.once("exit", killAll);
  let output = "";
  child.stdout?.on("data", (d) => {
    if (output.length < 20_000) output += d;
  });
  child.stderr?.on("data", (d) => {
    if (output.length < 20_000) output += d;
  });
  const stop = async () => {
    process.removeListener("exit", killAll);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      return;
    }
    const t = setTimeout(killAll, 3000);
    await exited;
    clearTimeout(t);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (child.exitCode !== null) {
        throw new PetraError("PROCESS_FAILED", `hardhat node exited (${child.exitCode}): ${output.slice(-2000)}`);
      }
      if (/Started HTTP and WebSocket JSON-RPC server/.test(output)) {
        try {
          const r = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
          });
          if (r.ok) break;
        } catch {
          // not yet
        }
      }
      if (Date.now() > deadline)
        throw new PetraError("RPC_UNAVAILABLE", `hardhat node not up on ${url}: ${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, pid, stop };
}
