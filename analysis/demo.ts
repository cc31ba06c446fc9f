import * as fs from "node:fs";
import * as path from "node:path";
import type { ContractTransactionResponse, Signer } from "ethers";
import { deployEnergyMarket } from "../agents/deploy-market";
import type { EnergyMarket } from "../typechain-types";

export interface DemoOptions {
  /** Signers: the DSO first, then a producer's and a consumer's anonymous address. */
  signers: [Signer, Signer, Signer];
  /** Directory for demo.json; nothing is written when undefined. */
  outDir?: string;
  log?: (line: string) => void;
}

export interface DemoStep {
  step: string;
  gasUsed: number;
}

/** Trading interval index of a time of day, for 15-minute intervals (14:15 is interval 57). */
export function intervalOf(hours: number, minutes: number): number {
  return hours * 4 + Math.floor(minutes / 15);
}

/**
 * A small end-to-end PETra market: the DSO mints, a producer asks, a consumer accepts with a
 * partial overlap in time and power, and both deposit everything back. Returns the market and each step's gas.
 */
export async function runDemo(opts: DemoOptions): Promise<{ market: string; steps: DemoStep[] }> {
  const log = opts.log ?? (() => {});
  const [dso, producer, consumer] = opts.signers;
  const [pAddr, cAddr] = await Promise.all([producer.getAddress(), consumer.getAddress()]);
  const steps: DemoStep[] = [];
  const record = async (step: string, tx: Promise<ContractTransactionResponse>) => {
    const receipt = await (await tx).wait();
    const gasUsed = Number(receipt?.gasUsed ?? 0n);
    steps.push({ step, gasUsed });
    log(`  gas ${String(gasUsed).padStart(7)}  ${step}`);
    return receipt;
  };

  log("PETra market demo (in-process Hardhat chain, 15-minute intervals)");
  const market = await deployEnergyMarket(dso);
  log(`  deployed EnergyMarket at ${await market.getAddress()} (DSO ${await dso.getAddress()})`);

  const t1415 = intervalOf(14, 15);
  const t1515 = intervalOf(15, 15);
  const t1445 = intervalOf(14, 45);
  const t1545 = intervalOf(15, 45);
  await record(
    `DSO mints +5000 W production, intervals ${t1415}-${t1515} (14:15-15:30), to producer ${pAddr}`,
    market.addEnergyAsset(pAddr, 5000, t1415, t1515),
  );
  await record(
    `DSO mints -3000 W consumption, intervals ${t1445}-${t1545} (14:45-16:00), to consumer ${cAddr}`,
    market.addEnergyAsset(cAddr, -3000, t1445, t1545),
  );
  await record("DSO credits the consumer 100000 money units", market.addFinancialBalance(cAddr, 100_000));

  const asPoster = market.connect(producer);
  await record("producer posts asset 0 as an ask at 2 per watt-interval", asPoster.postOffer(0, 2));
  const acceptReceipt = await record(
    "consumer accepts offer 0 with asset 1 (overlap 14:45-15:30, 3000 W)",
    market.connect(consumer).acceptOffer(0, 1),
  );
  for (const ev of await market.queryFilter(market.filters.AssetSplit(), acceptReceipt?.blockNumber)) {
    const a = ev.args;
    const who = a.owner === pAddr ? "producer" : "consumer";
    log(`    asset ${a.assetID} from ${a.parentID}: ${a.powerW} W, intervals ${a.start}-${a.end} -> ${who}`);
  }
  log(`  balances: producer ${await market.financialBalance(pAddr)}, consumer ${await market.financialBalance(cAddr)}`);

  await depositAll(market, producer, "producer", record);
  await depositAll(market, consumer, "consumer", record);
  log(
    `  balances after deposits: producer ${await market.financialBalance(pAddr)}, consumer ${await market.financialBalance(cAddr)}`,
  );

  if (opts.outDir) {
    fs.mkdirSync(opts.outDir, { recursive: true });
    const file = path.join(opts.outDir, "demo.json");
    fs.writeFileSync(file, `${JSON.stringify({ market: await market.getAddress(), steps }, null, 2)}\n`);
    log(`  wrote ${file}`);
  }
  return { market: await market.getAddress(), steps };
}

async function depositAll(
  market: EnergyMarket,
  holder: Signer,
  name: string,
  record: (step: string, tx: Promise<ContractTransactionResponse>) => Promise<unknown>,
): Promise<void> {
  const addr = await holder.getAddress();
  const m = market.connect(holder);
  const count = Number(await market.assetCount());
  for (let id = 0; id < count; id++) {
    const [owner, powerW, start, end] = await market.energyAsset(id);
    if (owner === addr)
      await record(`${name} deposits asset ${id} (${powerW} W, ${start}-${end})`, m.depositEnergyAsset(id));
  }
  const balance = await market.financialBalance(addr);
  if (balance > 0n) await record(`${name} deposits ${balance} money units`, m.depositFinancial(balance));
}
