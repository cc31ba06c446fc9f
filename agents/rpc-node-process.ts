/**
 * Local JSON-RPC nodes on 127.0.0.1 and a free port: `hardhat node` or anvil (an independent
 * implementation), started in a ProcessGroup and stopped by PID. The live runner, tests and
 * benches all start their nodes here.
 */
import { PetraError } from "../common/errors";
import { freePorts } from "./free-ports";
import { type Managed, ProcessGroup, ROOT } from "./process-group";

export async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await r.json()) as { result?: unknown; error?: { message?: string } };
  if (body.error)
    throw new PetraError("RPC_UNAVAILABLE", `${method} at ${url}: ${body.error.message}`, { url, method });
  return body.result;
}

export type NodeKind = "hardhat" | "anvil";

export interface LiveNode {
  kind: NodeKind;
  url: string;
  managed: Managed;
}

/** Path of the anvil binary from @foundry-rs/anvil, or undefined when the package is not installed. */
export function anvilBinary(): string | undefined {
  for (const pkg of ["@foundry-rs/anvil-linux-amd64/bin/anvil", "@foundry-rs/anvil-linux-amd64/anvil"]) {
    try {
      return require.resolve(pkg, { paths: [ROOT] });
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

/** Starts a local JSON-RPC node on 127.0.0.1 and a free port, and waits until it answers. */
export async function startNode(
  group: ProcessGroup,
  kind: NodeKind,
  opts: { logFile?: string; timeoutMs?: number; extraArgs?: string[] } = {},
): Promise<LiveNode> {
  const [port] = await freePorts(1);
  let managed: Managed;
  if (kind === "hardhat") {
    const cli = require.resolve("hardhat/internal/cli/cli", { paths: [ROOT] });
    managed = group.spawn(
      "hardhat node",
      process.execPath,
      [cli, "node", "--hostname", "127.0.0.1", "--port", String(port), ...(opts.extraArgs ?? [])],
      { logFile: opts.logFile },
    );
  } else {
    const bin = anvilBinary();
    if (!bin)
      throw new PetraError(
        "PROCESS_FAILED",
        "anvil: @foundry-rs/anvil is not installed (npm install --save-dev @foundry-rs/anvil)",
      );
    managed = group.spawn("anvil", bin, ["--host", "127.0.0.1", "--port", String(port), ...(opts.extraArgs ?? [])], {
      logFile: opts.logFile,
    });
  }
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (managed.child.exitCode !== null) {
      throw new PetraError(
        "PROCESS_FAILED",
        `${managed.name} exited (${managed.child.exitCode}): ${managed.output().slice(-2000)}`,
      );
    }
    try {
      await rpc(url, "eth_chainId");
      return { kind, url, managed };
    } catch {
      // not up yet
    }
    if (Date.now() > deadline)
      throw new PetraError(
        "RPC_UNAVAILABLE",
        `${managed.name} not answering on ${url}: ${managed.output().slice(-2000)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RpcNodeOptions {
  /** Startup budget. Default 60_000 ms (hardhat loads its config through ts-node). */
  timeoutMs?: number;
}

export interface RpcNode {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A hardhat node in a process group of its own, for tests and benches that need just a node. */
export async function startHardhatNode(options: RpcNodeOptions = {}): Promise<RpcNode> {
  const group = new ProcessGroup();
  try {
    const node = await startNode(group, "hardhat", { timeoutMs: options.timeoutMs });
    return { url: node.url, port: Number(new URL(node.url).port), pid: node.managed.pid, stop: () => group.stopAll() };
  } catch (e) {
    await group.stopAll();
    throw e;
  }
}
