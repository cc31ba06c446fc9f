import type { Signer } from "ethers";
import { type EnergyMarket, EnergyMarket__factory } from "../typechain-types";

/** Deploys EnergyMarket with `dso` as its DSO. Tests, the demo and the runners all deploy through here. */
export async function deployEnergyMarket(dso: Signer): Promise<EnergyMarket> {
  const market = await new EnergyMarket__factory(dso).deploy();
  await market.waitForDeployment();
  return market;
}

/** Attaches to an already deployed market. */
export function attachEnergyMarket(address: string, runner: Signer): EnergyMarket {
  return EnergyMarket__factory.connect(address, runner);
}
