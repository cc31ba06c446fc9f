import { Contract, type Signer } from "ethers";
import { type EnergyMarket, EnergyMarket__factory } from "../typechain-types";

/** Deploys EnergyMarket with `dso` as its DSO. Tests, the demo and the runners all deploy through here. */
export async function deployEnergyMarket(dso: Signer): Promise<EnergyMarket> {
  const market = await new EnergyMarket__factory(dso).deploy();
  await market.waitForDeployment();
  return market;
}

/**
 * The market's ABI parsed once: the typechain factory's connect parses it for every contract
 * object (24 KB each), and a simulated day of 1,000 households attaches one per pseudonym.
 */
const MARKET_INTERFACE = EnergyMarket__factory.createInterface();

/** Attaches to an already deployed market. */
export function attachEnergyMarket(address: string, runner: Signer): EnergyMarket {
  return new Contract(address, MARKET_INTERFACE, runner) as unknown as EnergyMarket;
}
