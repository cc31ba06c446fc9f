/**
 * Deploys the zero-knowledge contracts next to an EnergyMarket and authorises them as minters:
 * the one code path for runners, benches and test fixtures.
 */
import type { Signer } from "ethers";
import { check } from "../common/errors";
import { ZK } from "../common/zk-params";
import {
  type AllowanceVault,
  AllowanceVault__factory,
  EnergyMarket__factory,
  type Mixer,
  Mixer__factory,
  PoseidonT3__factory,
} from "../typechain-types";

export interface ZkDeployOptions {
  /** Address of the EnergyMarket; `dso` must be its DSO, who authorises the new minters. */
  marketAddress: string;
  dso: Signer;
  /** Mixer pools to deploy; defaults to every denomination in common/zk-constants.json. */
  denominations?: readonly bigint[];
  /** Direction of the assets the allowance vault mints: -1 consumption (default), +1 production. */
  vaultDirection?: 1 | -1;
}

/** The Groth16 verifiers are libraries inlined into the Mixer and the vault: nothing to deploy. */
export interface ZkDeployment {
  poseidonT3: string;
  /** One pool per denomination. */
  mixers: Map<bigint, Mixer>;
  vault: AllowanceVault;
}

/** Fully qualified name under which the tree's Poseidon library is linked. */
export const POSEIDON_T3_LINK = "poseidon-solidity/PoseidonT3.sol:PoseidonT3";

export async function deployZk(options: ZkDeployOptions): Promise<ZkDeployment> {
  const { marketAddress, dso } = options;
  const denominations = options.denominations ?? ZK.mixer.denominations;
  for (const d of denominations) {
    check(ZK.mixer.denominations.includes(d), "denominations", `${d} is not a mixer denomination`);
  }
  const market = EnergyMarket__factory.connect(marketAddress, dso);
  check((await market.dso()) === (await dso.getAddress()), "dso", "must be the market's DSO");

  const deployed = async <T extends { waitForDeployment(): Promise<unknown>; getAddress(): Promise<string> }>(
    c: Promise<T>,
  ): Promise<T> => {
    const contract = await c;
    await contract.waitForDeployment();
    return contract;
  };
  const poseidon = await deployed(new PoseidonT3__factory(dso).deploy());
  const link = { [POSEIDON_T3_LINK]: await poseidon.getAddress() };

  const mixers = new Map<bigint, Mixer>();
  for (const d of denominations) {
    const mixer = await deployed(new Mixer__factory(link, dso).deploy(marketAddress, d));
    await (await market.setMinter(await mixer.getAddress(), true)).wait();
    mixers.set(d, mixer);
  }
  const vault = await deployed(
    new AllowanceVault__factory(link, dso).deploy(marketAddress, options.vaultDirection ?? -1),
  );
  await (await market.setMinter(await vault.getAddress(), true)).wait();

  return {
    poseidonT3: await poseidon.getAddress(),
    mixers,
    vault,
  };
}
