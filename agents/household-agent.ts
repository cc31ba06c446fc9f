import { createRng, type Rng } from "../common/rng";
import { Forecast } from "./forecast";
import { GasFunder } from "./gas-funding";
import type { Chain } from "./interfaces";
import type { GasSetup } from "./prosumer";
import { PseudonymWallet, type RotationPolicy } from "./pseudonym-wallet";

/** What a household agent is made of besides its seams: the same in a live process and in a simulation. */
export interface HouseholdParts {
  /** The household's own random stream, forked from the run's seed. */
  rng: Rng;
  wallet: PseudonymWallet;
  forecast: Forecast;
  gas: GasSetup;
}

/**
 * Builds a household's wallet, forecast and gas setup from the run's seed, so that the household
 * behaves the same whether it runs as its own process (agents/prosumer-process.ts) or inside a
 * simulation (analysis/sim-runner.ts).
 */
export function householdParts(o: {
  runSeed: number;
  householdId: string;
  rotation: RotationPolicy;
  trueNetW: ReadonlyMap<number, number>;
  forecastErrorRelativeSd: number;
  pvCapacityW: number;
  connectionLimitW: number;
  gasFunding: "dso" | "household-main";
  gasPerAddressWei: string;
  chain: Chain;
}): HouseholdParts {
  const rng = createRng(o.runSeed).fork(`household/${o.householdId}`);
  const wallet = new PseudonymWallet({
    runSeed: o.runSeed,
    householdId: o.householdId,
    policy: o.rotation,
    rng: rng.fork("rotation"),
  });
  const forecast = new Forecast({
    trueNetW: o.trueNetW,
    errorRelativeSd: o.forecastErrorRelativeSd,
    maxProductionW: o.pvCapacityW,
    maxConsumptionW: o.connectionLimitW,
    rng: rng.fork("forecast"),
  });
  const gas: GasSetup =
    o.gasFunding === "dso"
      ? { mode: "dso" }
      : {
          mode: "household-main",
          funder: new GasFunder({
            chain: o.chain,
            funderPrivateKey: wallet.main().privateKey,
            amountWei: BigInt(o.gasPerAddressWei),
          }),
        };
  return { rng, wallet, forecast, gas };
}
