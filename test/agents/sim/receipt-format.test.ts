import { expect } from "chai";
import { JsonRpcProvider, Log, Network, parseEther, TransactionReceipt, Wallet } from "ethers";
import { createSimChainProvider } from "../../../agents/sim/edr";
import { logParamsOf, receiptParamsOf } from "../../../agents/sim/receipt-format";
import { DEFAULT_SIM_CHAIN, type Eip1193 } from "../../../agents/sim/sim-node";
import { EnergyMarket__factory } from "../../../typechain-types";
import { signForSimChain } from "../../fixtures/sim";

const MARKET = EnergyMarket__factory.createInterface();
const network = Network.from(DEFAULT_SIM_CHAIN.chainId);
/** ethers' own formatting, which the fast one must equal: a provider that never connects. */
const ethersProvider = new JsonRpcProvider("http://unused.invalid/", network, { staticNetwork: network });

/**
 * The JSON text of an ethers object (its toJSON, fields in a fixed order). Compared as text:
 * hardhat-chai-matchers' deep equality reads hex strings as numbers, so a lower-case address would
 * equal its checksummed form.
 */
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x));

/** A fresh chain with receipts of every kind the agents meet: a deployment, mints, a post, a revert, a transfer. */
async function chainWithReceipts(): Promise<{ eip: Eip1193; hashes: string[]; market: string }> {
  const eip = await createSimChainProvider(DEFAULT_SIM_CHAIN);
  // Mined one by one, without automine: Hardhat's automine would throw on the reverting one.
  await eip.request({ method: "evm_setAutomine", params: [false] });
  const dso = Wallet.fromPhrase(DEFAULT_SIM_CHAIN.mnemonic);
  const home = new Wallet(`0x${"42".repeat(32)}`);
  const sign = (w: Wallet, nonce: number, to: string | null, data: string, value = 0n) =>
    signForSimChain(w, { nonce, to, data, value, gasLimit: 5_000_000n });
  const send = async (raw: string) => {
    const h = (await eip.request({ method: "eth_sendRawTransaction", params: [raw] })) as string;
    await eip.request({ method: "evm_mine", params: [] });
    return h;
  };
  const deployData = (await new EnergyMarket__factory().getDeployTransaction()).data as string;
  const hashes = [await send(await sign(dso as unknown as Wallet, 0, null, deployData))];
  const receipt = (await eip.request({ method: "eth_getTransactionReceipt", params: [hashes[0]] })) as {
    contractAddress: string;
  };
  const market = receipt.contractAddress;
  const mints = [1000n, -500n, 250n].map((powerW, i) => ({
    anonAddress: home.address,
    powerW,
    start: BigInt(i),
    end: BigInt(i + 1),
  }));
  hashes.push(
    await send(await sign(dso as unknown as Wallet, 1, market, MARKET.encodeFunctionData("addEnergyAssets", [mints]))),
  );
  hashes.push(await send(await sign(dso as unknown as Wallet, 2, home.address, "0x", parseEther("1"))));
  hashes.push(await send(await sign(home, 0, market, MARKET.encodeFunctionData("postOffer", [0n, 1000n]))));
  // Asset 0 is locked by its offer now: posting it again reverts.
  hashes.push(await send(await sign(home, 1, market, MARKET.encodeFunctionData("postOffer", [0n, 1000n]))));
  return { eip, hashes, market };
}

describe("sim/receipt-format: ethers' receipt and log formatting, faster", function () {
  this.timeout(120_000);

  it("gives the receipts and logs ethers gives, for every kind of transaction on a real chain", async () => {
    const { eip, hashes, market } = await chainWithReceipts();
    const receipts = await Promise.all(
      hashes.map((h) => eip.request({ method: "eth_getTransactionReceipt", params: [h] })),
    );
    const statuses = receipts.map((r) => (r as { status: string }).status);
    expect(statuses).to.deep.equal(["0x1", "0x1", "0x1", "0x1", "0x0"]);
    for (const [i, raw] of receipts.entries()) {
      const params = receiptParamsOf(raw);
      expect(params, `receipt ${i}`).to.not.equal(undefined);
      const fast = new TransactionReceipt(params as NonNullable<typeof params>, ethersProvider);
      const slow = ethersProvider._wrapTransactionReceipt(structuredClone(raw) as never, network);
      expect(json(fast), `receipt ${i}`).to.equal(json(slow));
      expect(fast.logs.length).to.equal(slow.logs.length);
      fast.logs.forEach((l, j) => {
        expect(json(l), `receipt ${i} log ${j}`).to.equal(json(slow.logs[j]));
        expect(l.removed, `receipt ${i} log ${j}`).to.equal(slow.logs[j]?.removed);
      });
    }
    const logs = (await eip.request({
      method: "eth_getLogs",
      params: [{ address: market, fromBlock: "0x0", toBlock: "latest" }],
    })) as unknown[];
    expect(logs.length).to.be.greaterThan(3);
    for (const [j, raw] of logs.entries()) {
      const params = logParamsOf(raw);
      expect(params, `log ${j}`).to.not.equal(undefined);
      const fast = new Log(params as NonNullable<typeof params>, ethersProvider);
      expect(json(fast), `log ${j}`).to.equal(json(ethersProvider._wrapLog(structuredClone(raw) as never, network)));
    }
  });

  it("leaves to ethers what a node would not send: numbers, mixed-case addresses, bad widths, a pre-Byzantium root", async () => {
    const { eip, hashes } = await chainWithReceipts();
    const raw = (await eip.request({ method: "eth_getTransactionReceipt", params: [hashes[1]] })) as Record<
      string,
      unknown
    > & { logs: Record<string, unknown>[] };
    const log = raw.logs[0] as Record<string, unknown>;
    const variants: [string, unknown][] = [
      ["a number for a quantity", { ...raw, blockNumber: 5 }],
      ["a mixed-case address", { ...raw, from: String(raw.from).replace(/[a-f]/, (c) => c.toUpperCase()) }],
      ["a short hash", { ...raw, blockHash: "0x1234" }],
      ["odd-length data in a log", { ...raw, logs: [{ ...log, data: "0x123" }] }],
      ["a root", { ...raw, root: `0x${"00".repeat(32)}` }],
      ["no logs", { ...raw, logs: undefined }],
      ["not an object", "0x12"],
    ];
    for (const [what, v] of variants) expect(receiptParamsOf(v), what).to.equal(undefined);
    expect(logParamsOf({ ...log, removed: "yes" }), "removed not a boolean").to.equal(undefined);
    expect(logParamsOf({ ...log, logIndex: 1 }), "a number for logIndex").to.equal(undefined);
    expect(logParamsOf(null), "null").to.equal(undefined);
  });
});
