/**
 * The zero-knowledge part of a live run (scenario prosumer.withdrawal = "zk"): the zk contracts
 * deployed next to the market through mixer/deploy.ts, the relayer process, and the config pieces
 * the DSO's allowance desk and each household need. analysis/live-runner.ts calls it; everything
 * it starts lives in the runner's process group.
 *
 * Gas in zk mode: a pseudonym's first ether is the relayer's gas drop (scenario gasPerAddressWei),
 * paid for by a fee in the withdrawal's first mixer note, when the scenario's gasFunding is "dso"
 * (the DSO never learns the pseudonym, so it cannot fund it); with "household-main" the household
 * funds its pseudonyms itself, as in PETra.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Signer } from "ethers";
import type { PrivateWithdrawalConfig } from "../agents/private-withdrawer";
import { type Managed, type ProcessGroup, ROOT, waitForOutput } from "../agents/process-group";
import { PetraError } from "../common/errors";
import { ZK } from "../common/zk-params";
import { deployZk } from "../mixer/deploy";
import type { RelayerProcessConfig } from "../mixer/relayer-process";

export interface LiveZk {
  /** Block of the first zk deployment: tree sync starts there. */
  fromBlock: number;
  pools: Record<string, string>;
  vaults: { consumption: string; production: string };
  relayerUrl: string;
  relayerAddress: string;
  relayer: Managed;
  /** The DSO config's allowanceDesk section. */
  deskConfig: { endpoint: string; vaults: { consumption: string; production: string }; pools: string[] };
  /** A household's `zk` config section, once the desk's endpoint is known. */
  prosumerConfig(householdId: string, deskEndpoint: string, agentsDir: string): PrivateWithdrawalConfig;
  /**
   * Money a household's account needs beyond PETra's (its withdrawals' worth): change on whole
   * notes and relayer fees, one note of the second-smallest denomination per interval.
   */
  balanceSlack(intervals: number): number;
  /** What config.json records. */
  description: Record<string, unknown>;
}

export async function startLiveZk(o: {
  group: ProcessGroup;
  dso: Signer;
  marketAddress: string;
  /** The node the relayer submits to (directly, not through the households' observer). */
  rpcUrl: string;
  relayerPrivateKey: string;
  /** Wei per gas drop; "0" = the households fund their pseudonyms themselves. */
  gasDropWei: string;
  runDir: string;
  timeoutMs: number;
  log: (line: string) => void;
}): Promise<LiveZk> {
  const provider = o.dso.provider;
  if (!provider) throw new PetraError("INVALID_ARGUMENT", "dso: must be connected to a provider");
  const fromBlock = await provider.getBlockNumber();
  // Consumption vault with every mixer pool, then a production vault (deployZk deploys one vault).
  const main = await deployZk({ marketAddress: o.marketAddress, dso: o.dso, vaultDirection: -1 });
  const production = await deployZk({
    marketAddress: o.marketAddress,
    dso: o.dso,
    denominations: [],
    vaultDirection: 1,
  });
  const pools: Record<string, string> = {};
  for (const [d, m] of main.mixers) pools[d.toString()] = await m.getAddress();
  const vaults = { consumption: await main.vault.getAddress(), production: await production.vault.getAddress() };
  o.log(
    `zk: pools ${Object.entries(pools)
      .map(([d, a]) => `${d}@${a}`)
      .join(", ")}; vaults ${vaults.consumption} (-), ${vaults.production} (+)`,
  );

  const relayerDir = path.join(o.runDir, "relayer");
  fs.mkdirSync(relayerDir, { recursive: true });
  const config: RelayerProcessConfig = {
    rpcUrl: o.rpcUrl,
    privateKey: o.relayerPrivateKey,
    pools: Object.values(pools),
    vaults: [vaults.consumption, vaults.production],
    gasDropWei: o.gasDropWei,
  };
  const configPath = path.join(relayerDir, "relayer.json");
  fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const relayer = o.group.spawn(
    "relayer",
    process.execPath,
    ["-r", "ts-node/register/transpile-only", path.join(ROOT, "mixer", "relayer-process.ts"), "--config", configPath],
    {
      env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"), TS_NODE_TRANSPILE_ONLY: "true" },
      logFile: path.join(relayerDir, "relayer.log"),
    },
  );
  const ready = JSON.parse((await waitForOutput(relayer, /\{"event":"ready".*\}/, o.timeoutMs))[0]) as {
    url: string;
    relayer: string;
  };
  o.log(`relayer on ${ready.url} (pid ${relayer.pid}, account ${ready.relayer})`);
  const sorted = [...ZK.mixer.denominations].sort((a, b) => (a < b ? -1 : 1));
  const slackNote = Number(sorted[1] ?? sorted[0] ?? 0n);
  return {
    fromBlock,
    pools,
    vaults,
    relayerUrl: ready.url,
    relayerAddress: ready.relayer,
    relayer,
    deskConfig: { endpoint: "tcp://127.0.0.1:*", vaults, pools: Object.values(pools) },
    prosumerConfig: (householdId, deskEndpoint, agentsDir) => ({
      relayerUrl: ready.url,
      deskEndpoint,
      vaults,
      pools,
      fromBlock,
      storeFile: path.join(agentsDir, `${householdId}.private.json`),
    }),
    balanceSlack: (intervals) => intervals * slackNote,
    description: { pools, vaults, fromBlock, relayerUrl: ready.url, relayer: ready.relayer, gasDropWei: o.gasDropWei },
  };
}
