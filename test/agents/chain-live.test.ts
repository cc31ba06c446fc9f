import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import {
  AbstractSigner,
  FeeData,
  HDNodeWallet,
  JsonRpcProvider,
  Network,
  type TransactionRequest,
  Wallet,
} from "ethers";
import { LiveChain, MARKET_GAS_LIMITS, marketGasLimits, SerialNonceSigner } from "../../agents/chain-live";
import { LiveClock } from "../../agents/clock-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import type { ChainLog } from "../../agents/interfaces";
import { ProcessGroup } from "../../agents/process-group";
import { type LiveNode, rpc, startNode } from "../../agents/rpc-node-process";
import { DirectTransport } from "../../agents/transport-direct";
import { EnergyMarket__factory } from "../../typechain-types";

const MNEMONIC = "test test test test test test test test test test test junk";
const key = (i: number) => HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).privateKey;
const MARKET = EnergyMarket__factory.createInterface();

describe("LiveChain # against hardhat node over JSON-RPC", function () {
  this.timeout(90_000);
  const group = new ProcessGroup();
  const transport = new DirectTransport({ sourceAddressByIdentity: { dso: "127.0.0.9", alice: "127.0.0.10" } });
  let node: LiveNode;
  let chain: LiveChain;

  before(async () => {
    node = await startNode(group, "hardhat");
    const clock = new LiveClock();
    const bootstrap = await LiveChain.connect({
      rpcUrl: node.url,
      marketAddress: `0x${"00".repeat(20)}`,
      transport,
      identity: "dso",
      clock,
    });
    const market = await deployEnergyMarket(bootstrap.signer(key(0)));
    bootstrap.destroy();
    chain = await LiveChain.connect({
      rpcUrl: node.url,
      marketAddress: await market.getAddress(),
      transport,
      identity: "dso",
      clock,
      pollIntervalMs: 50,
    });
  });

  after(async () => {
    chain?.destroy();
    await transport.close();
    await group.stopAll();
  });

  it("numbers concurrent sends from one signer without reusing or skipping a nonce", async () => {
    const dso = chain.signer(key(0));
    const market = chain.market(dso);
    const sends = Array.from({ length: 20 }, (_, i) => market.addEnergyAsset(dso.address, 1000 + i, 1, 1));
    const txs = await Promise.all(sends);
    const receipts = await Promise.all(txs.map((t) => t.wait()));
    expect(receipts.every((r) => r?.status === 1)).to.equal(true);
    const nonces = txs.map((t) => t.nonce).sort((a, b) => a - b);
    for (let i = 1; i < nonces.length; i++) expect(nonces[i]).to.equal((nonces[0] as number) + i);
  });

  it("leaves no nonce gap after a send that reverts in gas estimation", async () => {
    const alice = chain.signer(key(3));
    const market = chain.market(alice);
    // Not the DSO: reverts with EnergyMarket__NotMinter before it gets a nonce.
    let reverted = false;
    await market.addEnergyAsset(alice.address, 5, 1, 1).catch(() => {
      reverted = true;
    });
    expect(reverted).to.equal(true);
    const ok = await (await alice.sendTransaction({ to: alice.address, value: 1n })).wait();
    expect(ok?.status).to.equal(1);
  });

  it("works with blocks mined on a timer (automine off)", async () => {
    await rpc(node.url, "evm_setAutomine", [false]);
    const timer = setInterval(() => void rpc(node.url, "evm_mine").catch(() => undefined), 200);
    try {
      const dso = chain.signer(key(0));
      const txs = await Promise.all([0, 1, 2].map((i) => chain.market(dso).addFinancialBalance(dso.address, 10 + i)));
      const receipts = await Promise.all(txs.map((t) => t.wait()));
      expect(receipts.every((r) => r?.status === 1)).to.equal(true);
    } finally {
      clearInterval(timer);
      await rpc(node.url, "evm_setAutomine", [true]);
    }
  });

  it("delivers every market log once, in chain order, from the first block on, across a lost filter", async () => {
    const seen: ChainLog[] = [];
    let pollErrors = 0;
    const watch = chain.watchMarketLogs({ fromBlock: 0, onError: () => pollErrors++ }, (logs) => {
      seen.push(...logs);
    });
    try {
      const waitFor = async (n: number) => {
        for (let i = 0; i < 100 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 50));
      };
      await waitFor(23);
      expect(seen.length).to.equal(23);
      // Drop every filter the node has: the watch must start a new one without losing or repeating logs.
      for (let id = 0; id < 10; id++)
        await rpc(node.url, "eth_uninstallFilter", [`0x${id.toString(16)}`]).catch(() => undefined);
      const dso = chain.signer(key(0));
      await (await chain.market(dso).addEnergyAsset(dso.address, 77, 2, 2)).wait();
      await waitFor(24);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      watch.cancel();
    }
    expect(seen.length).to.equal(24);
    expect(pollErrors, "the filter was never lost: the test proves nothing").to.be.at.least(1);
    const order = seen.map((l) => l.blockNumber * 1000 + l.logIndex);
    expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
    expect(new Set(order).size).to.equal(order.length);
    const last = MARKET.parseLog(seen[23] as ChainLog);
    expect(last?.name).to.equal("AssetAdded");
    expect(last?.args.powerW).to.equal(77n);
  });
});

describe("SerialNonceSigner # signing", () => {
  const network = Network.from(31337);
  const provider = new JsonRpcProvider("http://127.0.0.1:1/", network, { staticNetwork: network });
  const market = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

  it("signs the same bytes as ethers' Wallet and has its address", async () => {
    for (const i of [0, 5, 9]) {
      const signer = new SerialNonceSigner(key(i), provider);
      const wallet = new Wallet(key(i));
      expect(signer.address).to.equal(wallet.address);
      const tx = {
        type: 2,
        chainId: 31337,
        nonce: i,
        to: market,
        data: MARKET.encodeFunctionData("postOffer", [7n, 11n]),
        value: 0n,
        gasLimit: 200_000n,
        maxFeePerGas: 3_000_000_000n,
        maxPriorityFeePerGas: 1_000_000_000n,
      };
      expect(await signer.signTransaction(tx)).to.equal(await wallet.signTransaction(tx));
    }
  });

  it("populates a plain send with the fields ethers' own populateTransaction gives", async () => {
    // Fee data without a node: what the simulated provider does too.
    class FixedFees extends JsonRpcProvider {
      override async getFeeData(): Promise<FeeData> {
        return new FeeData(7n, 2_000_000_001n, 1_000_000_000n);
      }
    }
    const fees = new FixedFees("http://127.0.0.1:1/", network, { staticNetwork: network });
    const signer = new SerialNonceSigner(key(3), fees);
    const requests: TransactionRequest[] = [
      {
        to: market.toLowerCase(),
        nonce: 4,
        gasLimit: 200_000n,
        data: MARKET.encodeFunctionData("postOffer", [7n, 11n]),
      },
      { to: market, nonce: 0, gasLimit: 21_000n, value: 5n, type: 2 },
      { to: market, nonce: 9, gasLimit: 21_000n, chainId: 31337n, data: "0x" },
      // Not the plain case: ethers' own path, with the same result by definition.
      { to: market, nonce: 1, gasLimit: 21_000n, maxFeePerGas: 9n, maxPriorityFeePerGas: 1n },
    ];
    for (const tx of requests) {
      const ours = await signer.populateTransaction(tx);
      const theirs = await AbstractSigner.prototype.populateTransaction.call(signer, tx);
      expect(
        JSON.stringify(ours, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)),
        JSON.stringify(tx.to),
      ).to.equal(
        JSON.stringify(
          Object.fromEntries(Object.keys(ours).map((k) => [k, (theirs as Record<string, unknown>)[k]])),
          (_k, v) => (typeof v === "bigint" ? `${v}n` : v),
        ),
      );
      expect(Object.keys(ours).sort()).to.deep.equal(Object.keys(theirs).sort());
    }
  });

  it("refuses a transaction from another address, naming the field", async () => {
    const signer = new SerialNonceSigner(key(0), provider);
    const other = new Wallet(key(1)).address;
    const error = await signer
      .signTransaction({ from: other, to: market, chainId: 31337, nonce: 0, gasLimit: 21_000n, gasPrice: 1n })
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(error?.message).to.match(/tx\.from/);
  });

  it("gives the market's methods a fixed gas limit, and nothing else one", () => {
    const limitOf = marketGasLimits(market);
    expect(limitOf({ to: market, data: MARKET.encodeFunctionData("acceptOffer", [1n, 2n]) })).to.equal(
      MARKET_GAS_LIMITS.acceptOffer,
    );
    expect(limitOf({ to: market.toLowerCase(), data: MARKET.encodeFunctionData("postOffer", [1n, 2n]) })).to.equal(
      MARKET_GAS_LIMITS.postOffer,
    );
    // A mint is the DSO's, sized by its batch: estimated, not fixed.
    expect(limitOf({ to: market, data: MARKET.encodeFunctionData("addEnergyAsset", [market, 1, 1, 1]) })).to.equal(
      undefined,
    );
    expect(
      limitOf({ to: new Wallet(key(1)).address, data: MARKET.encodeFunctionData("postOffer", [1n, 2n]) }),
    ).to.equal(undefined);
  });

  it("leaves every fixed limit 25% above the most gas the method used in gas-snapshot.json", () => {
    // The snapshot is measured (test/contracts/gas-snapshot.test.ts fails when it drifts), so a
    // contract change that outgrows a limit fails here instead of as out-of-gas reverts in runs.
    const snapshot = JSON.parse(
      fs.readFileSync(path.join(__dirname, "..", "..", "gas-snapshot.json"), "utf8"),
    ) as Record<string, number>;
    for (const [method, limit] of Object.entries(MARKET_GAS_LIMITS)) {
      const used = Object.entries(snapshot)
        .filter(([name]) => name.startsWith(`${method} `) || name === method)
        .map(([, gas]) => gas);
      expect(used, method).to.not.be.empty;
      expect(Number(limit), method).to.be.at.least(Math.ceil(Math.max(...used) * 1.25));
    }
  });
});
