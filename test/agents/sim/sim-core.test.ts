import { expect } from "chai";
import { SerialNonceSigner } from "../../../agents/chain-live";
import { devKey } from "../../../agents/dev-accounts";
import { SimClock } from "../../../agents/sim/clock-sim";
import { parseDelay } from "../../../agents/sim/distribution";
import { createSimChainProvider } from "../../../agents/sim/edr";
import { Link, SimChain, SimProvider } from "../../../agents/sim/sim-chain";
import { DEFAULT_SIM_CHAIN, SimNode } from "../../../agents/sim/sim-node";
import { createRng } from "../../../common/rng";
import { EnergyMarket__factory } from "../../../typechain-types";

describe("simulated chain", () => {
  it("deploys, sends and mines on the simulated clock, with the latency the link draws", async () => {
    const clock = new SimClock();
    const node = await SimNode.start(
      await createSimChainProvider(DEFAULT_SIM_CHAIN),
      clock,
      DEFAULT_SIM_CHAIN.genesisDate,
    );
    const link = new Link(parseDelay("constant:10", "rpc"), createRng(1));
    const provider = new SimProvider({ node, clock, link, chainId: DEFAULT_SIM_CHAIN.chainId, identity: "dso" });
    const signer = new SerialNonceSigner(devKey(0), provider);
    const deployed = await clock.runUntil(
      (async () => {
        const tx = await signer.sendTransaction(await new EnergyMarket__factory().getDeployTransaction());
        await clock.sleep(1000);
        await node.mine();
        return provider.getTransactionReceipt(tx.hash);
      })(),
      "the test",
    );
    expect(deployed?.status).to.equal(1);
    const market = deployed?.contractAddress as string;
    const chain = new SimChain({ node, clock, provider, link, marketAddress: market });
    const seen: number[] = [];
    chain.watchMarketLogs({ fromBlock: 0 }, (logs) => {
      for (const l of logs) seen.push(l.blockNumber);
    });
    const t0 = clock.now();
    const receipt = await clock.runUntil(
      (async () => {
        const tx = await chain.market(signer).addFinancialBalance(await signer.getAddress(), 5n);
        clock.schedule(clock.now() + 5000, () => void node.mine());
        return chain.waitForReceipt(tx.hash);
      })(),
      "the test",
    );
    expect(receipt.status).to.equal(1);
    // The mine at +5 s, then half a round trip to hear of it and a whole one to fetch the receipt.
    expect(clock.now() - t0).to.be.greaterThan(5000);
    await clock.runUntil(clock.sleep(100), "a pause");
    expect(seen).to.deep.equal([receipt.blockNumber]);
  });
});
