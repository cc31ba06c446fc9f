import { JsonRpcProvider, Network } from "ethers";
import type { Eip1193, SimChainSpec } from "./sim-node";

/**
 * A fresh in-process Hardhat network (EDR) for one simulated run, built from the project's
 * Hardhat config with what a deterministic simulation needs: a fixed genesis date (block
 * timestamps must not depend on the wall clock), automine off, FIFO mempool order, blocks that
 * may share a timestamp (several blocks can fall in one simulated second), a gas limit and
 * balances sized for thousands of households. Needs the Hardhat runtime (the `petra` CLI and
 * `hardhat test` load it).
 */
export async function createSimChainProvider(spec: SimChainSpec): Promise<Eip1193> {
  // Loaded here, not at the top: only simulated runs need the Hardhat runtime.
  const hre = require("hardhat");
  const { createProvider } = require("hardhat/internal/core/providers/construction");
  const base = hre.config.networks.hardhat;
  const hardhat = {
    ...base,
    chainId: spec.chainId,
    initialDate: spec.genesisDate,
    blockGasLimit: spec.blockGasLimit,
    allowBlocksWithSameTimestamp: true,
    loggingEnabled: false,
    mining: { ...base.mining, auto: false, interval: 0, mempool: { order: "fifo" } },
    accounts: {
      mnemonic: spec.mnemonic,
      path: "m/44'/60'/0'/0",
      initialIndex: 0,
      count: spec.accountCount,
      accountsBalance: spec.accountBalanceWei.toString(),
      passphrase: "",
    },
  };
  const config = { ...hre.config, networks: { ...hre.config.networks, hardhat } };
  return (await createProvider(config, "hardhat", hre.artifacts)) as Eip1193;
}

/**
 * An ethers provider straight onto an EIP-1193 provider, with no simulated latency and no clock:
 * for reading a finished run's chain (the ledger) from the same process.
 */
export class Eip1193JsonRpcProvider extends JsonRpcProvider {
  readonly #eip: Eip1193;

  constructor(eip: Eip1193, chainId: number) {
    const network = Network.from(chainId);
    super("http://in-process.invalid/", network, { staticNetwork: network, batchMaxCount: 1, cacheTimeout: -1 });
    this.#eip = eip;
  }

  override async send(method: string, params: unknown[] | Record<string, unknown>): Promise<unknown> {
    return this.#eip.request({ method, params: (Array.isArray(params) ? params : [params]) as unknown[] });
  }
}
