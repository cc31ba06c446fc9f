import type { Clock } from "../agents/interfaces";
import { rpc } from "../agents/rpc-node-process";
import { check, PetraError } from "../common/errors";
import type { Rng } from "../common/rng";

/** How a live node produces blocks. */
export type BlockSetting =
  | { kind: "automine" }
  | { kind: "fixed"; intervalMs: number }
  | { kind: "exp"; meanMs: number };

/** Parses "automine", "fixed:MS" or "exp:MEAN_MS" (the --blocks option and the scenario's live.blocks). */
export function parseBlockSetting(text: string, parameter = "blocks"): BlockSetting {
  if (text === "automine") return { kind: "automine" };
  const m = /^(fixed|exp):(\d+)$/.exec(text);
  check(m !== null, parameter, `must be "automine", "fixed:MS" or "exp:MEAN_MS", got "${text}"`);
  const ms = Number(m[2]);
  check(ms >= 10, parameter, `block time must be at least 10 ms, got ${ms}`);
  return m[1] === "fixed" ? { kind: "fixed", intervalMs: ms } : { kind: "exp", meanMs: ms };
}

export function formatBlockSetting(b: BlockSetting): string {
  return b.kind === "automine" ? "automine" : b.kind === "fixed" ? `fixed:${b.intervalMs}` : `exp:${b.meanMs}`;
}

/**
 * Drives block production on a node. Fixed and exponential block times are produced the same way
 * on every node (automine off, one evm_mine per block at times drawn from the run's seed), so
 * hardhat and anvil see the same schedule; hardhat's and anvil's own interval mining disagree on
 * units and neither has an exponential mode.
 */
export async function startBlockProduction(opts: {
  url: string;
  setting: BlockSetting;
  rng: Rng;
  clock: Clock;
  onError?: (e: unknown) => void;
}): Promise<{ stop(): Promise<void> }> {
  const { url, setting, rng, clock } = opts;
  if (setting.kind === "automine") {
    // A node without the dev-node API (geth, a testnet) keeps producing blocks its own way.
    await rpc(url, "evm_setAutomine", [true]).catch((e) => opts.onError?.(e));
    return { stop: async () => undefined };
  }
  try {
    await rpc(url, "evm_setAutomine", [false]);
  } catch (e) {
    throw new PetraError(
      "RPC_UNAVAILABLE",
      `blocks: "${formatBlockSetting(setting)}" needs a dev node (evm_setAutomine, evm_mine); ${url} refused`,
      { url },
      { cause: e },
    );
  }
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const waitMs = setting.kind === "fixed" ? setting.intervalMs : Math.max(1, rng.exponential(setting.meanMs));
      await clock.sleep(waitMs);
      if (stopped) break;
      try {
        await rpc(url, "evm_mine", []);
      } catch (e) {
        opts.onError?.(e);
      }
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
