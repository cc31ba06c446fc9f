import { expect } from "chai";
import { Wallet } from "ethers";
import { SerialNonceSigner } from "../../../agents/chain-live";
import { devKey } from "../../../agents/dev-accounts";
import { ANVIL_KEPT_BLOCKS, startAnvilSimChain } from "../../../agents/sim/anvil";
import { SimClock } from "../../../agents/sim/clock-sim";
import { parseDelay } from "../../../agents/sim/distribution";
import { createSimChainProvider, EDR_CACHED_STATES_VAR, SIM_EDR_CACHED_STATES } from "../../../agents/sim/edr";
import { Link, SimChain, SimProvider } from "../../../agents/sim/sim-chain";
import { DEFAULT_SIM_CHAIN, SimNode } from "../../../agents/sim/sim-node";
import { createRng } from "../../../common/rng";
import { EnergyMarket__factory } from "../../../typechain-types";
import { signForSimChain } from "../../fixtures/sim";

/** A fresh simulated chain (EDR) and its node on a new clock. */
async function freshSimNode() {
  const clock = new SimClock();
  const eip = await createSimChainProvider(DEFAULT_SIM_CHAIN);
  return { clock, eip, node: await SimNode.start(eip, clock, DEFAULT_SIM_CHAIN.genesisDate) };
}

/** A fresh simulated chain, and dev account 0 signing over one link of `rpcLatency`. */
async function devSignerOnSimChain(rpcLatency: string, seed: number) {
  const { clock, eip, node } = await freshSimNode();
  const link = new Link(parseDelay(rpcLatency, "rpc"), createRng(seed));
  const provider = new SimProvider({ node, clock, link, chainId: DEFAULT_SIM_CHAIN.chainId, identity: "dev0" });
  return { clock, eip, node, signer: new SerialNonceSigner(devKey(0), provider) };
}

describe("simulated chain", () => {
  it("deploys, sends and mines on the simulated clock, with the latency the link draws", async () => {
    const { clock, node } = await freshSimNode();
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

  it("delivers a watcher every block's logs in order, however the link's delays fall for blocks a millisecond apart", async () => {
    const { clock, node } = await freshSimNode();
    // The sender's requests take no time, so that blocks can be sealed 1 ms apart; the watcher's
    // round trips take 0-400 ms, so that the second block often draws the shorter delay.
    const provider = new SimProvider({
      node,
      clock,
      link: new Link(parseDelay("constant:0", "rpc"), createRng(4)),
      chainId: DEFAULT_SIM_CHAIN.chainId,
      identity: "sender",
    });
    const signer = new SerialNonceSigner(devKey(0), provider);
    const link = new Link(parseDelay("uniform:0:400", "rpc"), createRng(5));
    const market = await clock.runUntil(
      (async () => {
        const tx = await signer.sendTransaction(await new EnergyMarket__factory().getDeployTransaction());
        await node.mine();
        return (await provider.getTransactionReceipt(tx.hash))?.contractAddress as string;
      })(),
      "deploying",
    );
    const chain = new SimChain({ node, clock, provider, link, marketAddress: market });
    const seen: number[] = [];
    chain.watchMarketLogs({ fromBlock: node.latestBlock + 1 }, (logs) => {
      for (const l of logs) seen.push(l.blockNumber);
    });
    const mined: number[] = [];
    await clock.runUntil(
      (async () => {
        const m = chain.market(signer);
        for (let i = 0; i < 20; i++) {
          for (const _ of [0, 1]) {
            await m.addFinancialBalance(await signer.getAddress(), 1n);
            await clock.sleep(1);
            mined.push((await node.mine()).number);
          }
          await clock.sleep(1000);
        }
      })(),
      "40 blocks",
    );
    expect(seen).to.deep.equal(mined);
  });

  it("answers receipts of recent blocks from memory, the chain's own answer, and none for a hash in no block", async () => {
    const { clock, eip, node, signer } = await devSignerOnSimChain("constant:2", 1);
    const byMethod = () => node.stats.callsByMethod;
    const fromChain = () =>
      (byMethod().eth_getTransactionReceipt?.calls ?? 0) +
      (byMethod()["eth_getTransactionReceipt (batched)"]?.calls ?? 0);
    const { sent, sealed } = await clock.runUntil(
      (async () => {
        const sent = [];
        for (let i = 0; i < 3; i++) sent.push(await signer.sendTransaction({ to: signer.address, value: 1n }));
        return { sent, sealed: await node.mine() };
      })(),
      "the test",
    );
    expect(sealed.txHashes).to.deep.equal(sent.map((t) => t.hash));
    expect(sealed.receipts.map((r) => r.transactionHash)).to.deep.equal(sealed.txHashes);
    // The node read each receipt once, while sealing, in one batch (EDR has no eth_getBlockReceipts).
    expect(fromChain()).to.equal(3);
    expect(byMethod()["eth_getTransactionReceipt (batched)"]?.calls).to.equal(3);
    const hash = sent[1]?.hash as string;
    const remembered = await clock.runUntil(node.request("eth_getTransactionReceipt", [hash]), "a receipt");
    expect(remembered).to.deep.equal(await eip.request({ method: "eth_getTransactionReceipt", params: [hash] }));
    const none = `0x${"ab".repeat(32)}`;
    expect(await clock.runUntil(node.request("eth_getTransactionReceipt", [none]), "no receipt")).to.equal(null);
    expect(fromChain()).to.equal(3);
    expect(node.stats.callsByMethod["eth_getTransactionReceipt (from the node's memory)"]?.calls).to.equal(2);
    // After 64 more blocks the receipt is the chain's to give again, and still the same.
    await clock.runUntil(
      (async () => {
        for (let i = 0; i < 64; i++) await node.mine();
      })(),
      "64 blocks",
    );
    expect(await clock.runUntil(node.request("eth_getTransactionReceipt", [hash]), "an old receipt")).to.deep.equal(
      remembered,
    );
    expect(fromChain()).to.equal(4);
  });

  it("answers a batch in order, and rejects a batch with a failing call, naming it", async () => {
    const eip = await createSimChainProvider(DEFAULT_SIM_CHAIN);
    const batch = eip.requestBatch?.bind(eip);
    expect(batch, "EDR's provider offers batches").to.not.equal(undefined);
    if (batch === undefined) return;
    const [chainId, head, none] = await batch([
      { method: "eth_chainId", params: [] },
      { method: "eth_blockNumber", params: [] },
      { method: "eth_getTransactionReceipt", params: [`0x${"ab".repeat(32)}`] },
    ]);
    expect([chainId, head, none]).to.deep.equal([`0x${DEFAULT_SIM_CHAIN.chainId.toString(16)}`, "0x0", null]);
    let err: unknown;
    try {
      await batch([
        { method: "eth_blockNumber", params: [] },
        { method: "eth_sendRawTransaction", params: ["0x1234"] },
      ]);
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.match(/batch of 2 calls: .*transaction/i);
  });

  it("forwards signed transactions queued together in one batch, each answered as a call of its own would be", async () => {
    // Two nodes on two fresh chains get the same transactions: one in a single turn (queued
    // together, so batched), one a turn each (awaited one by one). A refused transaction in the
    // middle of the batch, and a transaction sent twice, must get the same answers both ways.
    const dev = new Wallet(devKey(0));
    const [a, b, c] = [1, 2, 3].map((i) => new Wallet(`0x${String(i).padStart(64, "0")}`)) as [Wallet, Wallet, Wallet];
    const unfunded = new Wallet(`0x${"77".repeat(32)}`);
    const sign = (w: Wallet, nonce: number, to: string, value: bigint) =>
      signForSimChain(w, { nonce, to, value, gasLimit: 21_000n });
    const funding = await Promise.all([a, b, c].map((w, i) => sign(dev, i, w.address, 10n ** 18n)));
    const sends = [
      await sign(a, 0, dev.address, 1n),
      await sign(b, 0, dev.address, 1n),
      await sign(unfunded, 0, dev.address, 1n),
      await sign(c, 0, dev.address, 1n),
      await sign(a, 0, dev.address, 1n),
      await sign(a, 1, dev.address, 1n),
    ];
    const outcome = (p: Promise<unknown>) =>
      p.then(
        (h) => `accepted ${String(h)}`,
        (e) => `refused: ${String((e as { message?: string }).message ?? e).split("\n")[0]}`,
      );
    const answers: string[][] = [];
    for (const together of [true, false]) {
      const { clock, node } = await freshSimNode();
      for (const raw of funding) await clock.runUntil(node.request("eth_sendRawTransaction", [raw]), "funding");
      await clock.runUntil(node.mine(), "mining");
      const out: string[] = [];
      if (together) {
        const all = sends.map((raw) => outcome(node.request("eth_sendRawTransaction", [raw])));
        out.push(...(await clock.runUntil(Promise.all(all), "sending")));
        expect(node.stats.callsByMethod["eth_sendRawTransaction (batched)"]?.calls, "batched").to.be.greaterThan(1);
      } else {
        for (const raw of sends)
          out.push(await clock.runUntil(outcome(node.request("eth_sendRawTransaction", [raw])), "sending"));
        expect(node.stats.callsByMethod["eth_sendRawTransaction (batched)"], "not batched").to.equal(undefined);
      }
      const block = await clock.runUntil(node.mine(), "mining");
      out.push(`mined ${block.txHashes.join(",")}`);
      answers.push(out);
    }
    expect(answers[0]).to.deep.equal(answers[1]);
    const [together] = answers as [string[]];
    expect(together.filter((x) => x.startsWith("accepted")).length).to.equal(4);
    expect(together[2]).to.match(/^refused: .*funds/i);
    expect(together[4]).to.match(/^refused: /);
  });

  it("keeps answering for old blocks with EDR's state cache bounded", async () => {
    // The cache is bounded (edr.ts) so that a long day's memory stays flat; a state older than it
    // is rebuilt from EDR's per-block diffs, with the same answer.
    expect(Number(process.env[EDR_CACHED_STATES_VAR])).to.be.greaterThan(0);
    const { clock, eip, node, signer } = await devSignerOnSimChain("constant:1", 3);
    const to = `0x${"33".repeat(20)}`;
    const blocks = SIM_EDR_CACHED_STATES * 3;
    await clock.runUntil(
      (async () => {
        for (let i = 0; i < blocks; i++) {
          await signer.sendTransaction({ to, value: 1n, gasLimit: 21_000n });
          await node.mine();
        }
      })(),
      "blocks",
    );
    for (const n of [1, 2, SIM_EDR_CACHED_STATES, blocks]) {
      const balance = await eip.request({ method: "eth_getBalance", params: [to, `0x${n.toString(16)}`] });
      expect(BigInt(balance as string), `balance at block ${n}`).to.equal(BigInt(n));
    }
  });

  it("numbers a new signer after the mempool without asking the node for its pending state", async () => {
    const { clock, node } = await freshSimNode();
    const link = new Link(parseDelay("constant:2", "rpc"), createRng(2));
    const provider = new SimProvider({ node, clock, link, chainId: DEFAULT_SIM_CHAIN.chainId, identity: "h" });
    const chain = new SimChain({ node, clock, provider, link, marketAddress: `0x${"11".repeat(20)}` });
    const to = `0x${"22".repeat(20)}`;
    const nonces = await clock.runUntil(
      (async () => {
        const first = await chain.signer(devKey(1)).sendTransaction({ to, value: 1n, gasLimit: 21_000n });
        // A second signer of the same key while the first transaction is still in the mempool ...
        const second = await chain.signer(devKey(1)).sendTransaction({ to, value: 2n, gasLimit: 21_000n });
        await node.mine();
        // ... and a third after both are mined.
        const third = await chain.signer(devKey(1)).sendTransaction({ to, value: 3n, gasLimit: 21_000n });
        await node.mine();
        const receipts = await Promise.all([first, second, third].map((t) => chain.waitForReceipt(t.hash)));
        expect(receipts.map((r) => r.status)).to.deep.equal([1, 1, 1]);
        return [first.nonce, second.nonce, third.nonce];
      })(),
      "the test",
    );
    expect(nonces).to.deep.equal([0, 1, 2]);
    // Each signer asked for the latest nonce once, and the node answered from the blocks it sealed.
    expect(node.stats.callsByMethod["eth_getTransactionCount (from the node's memory)"]?.calls).to.equal(3);
    expect(node.stats.callsByMethod.eth_getTransactionCount).to.equal(undefined);
    expect(node.stats.callsByMethod.eth_estimateGas).to.equal(undefined);
  });

  it("answers latest nonces from the blocks it sealed as the chain does, and asks the chain once something else mined", async () => {
    const { clock, eip, node, signer } = await devSignerOnSimChain("constant:2", 4);
    const other = new SerialNonceSigner(devKey(2), signer.provider as SimProvider);
    const fresh = Wallet.createRandom().address;
    const ask = (a: string) => clock.runUntil(node.request("eth_getTransactionCount", [a, "latest"]), "a nonce");
    const chainSays = (a: string) => eip.request({ method: "eth_getTransactionCount", params: [a, "latest"] });
    await clock.runUntil(
      (async () => {
        await signer.sendTransaction({ to: fresh, value: 1n });
        // A transaction that fails on chain still uses its nonce: a deploy given too little gas.
        await other.sendTransaction({ data: EnergyMarket__factory.bytecode, gasLimit: 400_000n });
        await node.mine();
        await signer.sendTransaction({ to: fresh, value: 1n });
        // Sent but not mined: "latest" does not count it.
        await node.mine();
        await signer.sendTransaction({ to: fresh, value: 1n });
      })(),
      "the test",
    );
    for (const a of [signer.address, other.address, fresh]) expect(await ask(a)).to.equal(await chainSays(a));
    expect(await ask(signer.address)).to.equal("0x2");
    expect(await ask(other.address)).to.equal("0x1");
    const remembered = node.stats.callsByMethod["eth_getTransactionCount (from the node's memory)"]?.calls;
    expect(remembered).to.equal(5);
    // A block the node did not seal itself (the pending transfer goes in it): the chain answers from now on.
    // (The signers' own "pending" queries went to the chain before.)
    const asked = node.stats.callsByMethod.eth_getTransactionCount?.calls ?? 0;
    await clock.runUntil(node.request("hardhat_mine", []), "hardhat_mine");
    expect(await ask(signer.address)).to.equal("0x3");
    expect(node.stats.callsByMethod.eth_getTransactionCount?.calls).to.equal(asked + 1);
    expect(node.stats.callsByMethod["eth_getTransactionCount (from the node's memory)"]?.calls).to.equal(remembered);
  });
});

describe("SimClock # work tracked with a horizon", () => {
  /** Real asynchronous work (a chain call) that settles after `ms` of wall time. */
  const work = (ms: number, log: string[]) =>
    new Promise<void>((resolve) =>
      setTimeout(() => {
        log.push("work done");
        resolve();
      }, ms),
    );

  it("runs the events before the horizon while the work is in flight, and none at or after it until it settles", async () => {
    const clock = new SimClock();
    const log: string[] = [];
    clock.schedule(5, () => {
      clock.track(work(80, log), 100);
      log.push("sent at 5");
    });
    clock.schedule(50, () => log.push("event at 50"));
    clock.schedule(99.9, () => log.push("event at 99.9"));
    clock.schedule(100, () => log.push("event at 100"));
    clock.schedule(150, () => log.push("event at 150"));
    await clock.run();
    expect(log).to.deep.equal([
      "sent at 5",
      "event at 50",
      "event at 99.9",
      "work done",
      "event at 100",
      "event at 150",
    ]);
  });

  it("waits for work without a horizon before any further event, and for work when no event is left", async () => {
    const clock = new SimClock();
    const log: string[] = [];
    clock.schedule(5, () => {
      clock.track(work(40, log));
      log.push("sent at 5");
    });
    clock.schedule(6, () => log.push("event at 6"));
    clock.schedule(7, () => {
      // The answer's continuation schedules the event the work's caller is waiting for.
      clock.track(work(40, log), 1000).then(() => clock.schedule(1000, () => log.push("answer at 1000")));
    });
    await clock.run();
    expect(log).to.deep.equal(["sent at 5", "work done", "event at 6", "work done", "answer at 1000"]);
    expect(clock.now()).to.equal(1000);
  });
});

describe("anvil as the simulated chain", function () {
  this.timeout(120_000);

  it("prunes: a receipt more than ANVIL_KEPT_BLOCKS blocks old is gone, a recent one is there; stop() ends the process", async () => {
    const chain = await startAnvilSimChain(DEFAULT_SIM_CHAIN);
    const pid = chain.pid;
    try {
      expect(() => process.kill(pid, 0)).to.not.throw();
      const wallet = new Wallet(devKey(0));
      const hashes: string[] = [];
      for (let nonce = 0; nonce < ANVIL_KEPT_BLOCKS + 5; nonce++) {
        const raw = await wallet.signTransaction({
          type: 2,
          chainId: BigInt(DEFAULT_SIM_CHAIN.chainId),
          nonce,
          to: wallet.address,
          value: 1n,
          gasLimit: 21_000n,
          maxFeePerGas: 10n ** 10n,
          maxPriorityFeePerGas: 1n,
        });
        hashes.push((await chain.eip.request({ method: "eth_sendRawTransaction", params: [raw] })) as string);
        await chain.eip.request({ method: "evm_mine", params: [] });
      }
      const receipt = (h: string) => chain.eip.request({ method: "eth_getTransactionReceipt", params: [h] });
      expect(await receipt(hashes[0] as string)).to.equal(null);
      expect(await receipt(hashes[hashes.length - 1] as string)).to.not.equal(null);
      // The same genesis time as the in-process network: the first block after it is at genesis + 1 s or later.
      const first = (await chain.eip.request({ method: "eth_getBlockByNumber", params: ["0x1", false] })) as {
        timestamp: string;
      };
      expect(Number(first.timestamp) - Date.parse(DEFAULT_SIM_CHAIN.genesisDate) / 1000).to.be.within(0, 5);
    } finally {
      await chain.stop();
    }
    expect(() => process.kill(pid, 0)).to.throw();
  });
});
