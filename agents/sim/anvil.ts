import * as http from "node:http";
import { PetraError } from "../../common/errors";
import { ProcessGroup } from "../process-group";
import { startNode } from "../rpc-node-process";
import type { Eip1193, SimChainSpec } from "./sim-node";

/** What the simulated chain runs on: the in-process Hardhat network, or an anvil child process. */
export type SimChainKind = "edr" | "anvil";

/**
 * Blocks whose transactions and receipts anvil keeps. The simulated node answers receipts of the
 * last 64 blocks from its own memory and the ledger is written as blocks seal, so nothing in a
 * run reads further back; 256 leaves room for the DSO's log polls, which trail by a few blocks.
 */
export const ANVIL_KEPT_BLOCKS = 256;

/** States anvil keeps in memory: the head and a few behind it, for calls pinned to a recent block. */
export const ANVIL_KEPT_STATES = 8;

export interface AnvilSimChain {
  eip: Eip1193;
  pid: number;
  url: string;
  /**
   * Rejects, naming the exit code or signal and anvil's last output, if anvil exits before stop():
   * a run races it, so a dead chain ends the run at once instead of every agent failing in turn.
   */
  died: Promise<never>;
  stop(): Promise<void>;
}

/**
 * An anvil process set up as the simulated chain: the same genesis time, accounts, balances,
 * gas limit and FIFO mempool as the in-process network, mining only when asked (`--no-mining`),
 * and pruning: anvil keeps ANVIL_KEPT_STATES states and the transactions of ANVIL_KEPT_BLOCKS
 * blocks, so its memory stays flat, where EDR keeps every block and receipt (its cache of whole
 * states is bounded in edr.ts). anvil recomputes the state root over the whole state at every
 * block, though, so its blocks cost more as the market's storage grows. Requests go over one
 * keep-alive HTTP connection on loopback.
 */
export async function startAnvilSimChain(spec: SimChainSpec, opts: { logFile?: string } = {}): Promise<AnvilSimChain> {
  const genesisS = Math.floor(Date.parse(spec.genesisDate) / 1000);
  const weiPerEther = 10n ** 18n;
  if (spec.accountBalanceWei % weiPerEther !== 0n)
    throw new PetraError(
      "INVALID_ARGUMENT",
      "anvil funds dev accounts in whole ether: accountBalanceWei must be a multiple of 1e18",
    );
  const group = new ProcessGroup();
  try {
    const node = await startNode(group, "anvil", {
      logFile: opts.logFile,
      timeoutMs: 30_000,
      extraArgs: [
        "--silent",
        "--no-mining",
        "--order",
        "fifo",
        "--chain-id",
        String(spec.chainId),
        "--timestamp",
        String(genesisS),
        "--gas-limit",
        String(spec.blockGasLimit),
        "--mnemonic",
        spec.mnemonic,
        "--accounts",
        String(spec.accountCount),
        "--balance",
        String(spec.accountBalanceWei / weiPerEther),
        "--prune-history",
        String(ANVIL_KEPT_STATES),
        "--transaction-block-keeper",
        String(ANVIL_KEPT_BLOCKS),
      ],
    });
    const eip = new HttpEip1193(node.url);
    let stopping = false;
    const m = node.managed;
    const died = m.exited.then((code) => {
      const how = code === null ? `was killed by ${m.child.signalCode}` : `exited with code ${code}`;
      const error = new PetraError(
        "RPC_UNAVAILABLE",
        `anvil (pid ${m.pid}), the simulated chain, ${how}${stopping ? "" : " during the run"}: ${m.output().slice(-500).trim() || "no output"}`,
        { pid: m.pid },
      );
      if (!stopping) eip.fail(error);
      throw error;
    });
    // Nobody may be waiting when it dies (between runs, or after stop()).
    died.catch(() => {});
    return {
      eip,
      pid: m.pid,
      url: node.url,
      died,
      stop: async () => {
        stopping = true;
        eip.close();
        await group.stopAll();
      },
    };
  } catch (e) {
    await group.stopAll();
    throw e;
  }
}

/**
 * JSON-RPC over one keep-alive HTTP connection. The simulated node sends one request at a time,
 * so a single socket keeps the order and saves a connection per call.
 */
export class HttpEip1193 implements Eip1193 {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  readonly #url: URL;
  #id = 0;
  #failed: Error | undefined;

  constructor(url: string) {
    this.#url = new URL(url);
  }

  /** Every later request rejects with `error` (the node is known to be gone). */
  fail(error: Error): void {
    this.#failed = error;
  }

  request(args: { method: string; params?: unknown[] }): Promise<unknown> {
    if (this.#failed) return Promise.reject(this.#failed);
    const body = JSON.stringify({ jsonrpc: "2.0", id: ++this.#id, method: args.method, params: args.params ?? [] });
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.#url.hostname,
          port: this.#url.port,
          method: "POST",
          path: "/",
          agent: this.#agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            let reply: { result?: unknown; error?: { code?: number; message?: string; data?: unknown } };
            try {
              reply = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch {
              reject(
                new PetraError(
                  "RPC_UNAVAILABLE",
                  `${args.method}: ${this.#url.origin} answered HTTP ${res.statusCode} with no JSON`,
                ),
              );
              return;
            }
            if (reply.error) {
              // Shaped like EDR's errors, so callers read revert data and messages the same way.
              const e = new Error(reply.error.message ?? "unknown error") as Error & { code?: number; data?: unknown };
              e.code = reply.error.code;
              e.data = reply.error.data;
              reject(e);
            } else resolve(reply.result);
          });
          res.on("error", reject);
        },
      );
      req.on("error", (e) =>
        reject(new PetraError("RPC_UNAVAILABLE", `${args.method}: anvil at ${this.#url.origin}: ${e.message}`)),
      );
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
