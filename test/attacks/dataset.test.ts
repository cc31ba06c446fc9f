import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { getAddress, JsonRpcProvider } from "ethers";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { type RpcNode, startHardhatNode } from "../../agents/rpc-node-process";
import { runDemo } from "../../analysis/demo";
import { datasetLines, marketEvents, parseDataset, readDataset, writeDataset } from "../../attacks/dataset";
import { readDatasetFromRpc } from "../../attacks/dataset-rpc";
import { mixerMatching } from "../../attacks/heuristic-mixer";
import { addr, LedgerBuilder } from "../../attacks/ledger-builder";
import { replayMarket } from "../../attacks/market-replay";
import { isError } from "../../common/errors";
import { ZK } from "../../common/zk-params";
import { deployZk } from "../../mixer/deploy";
import { MerkleTree } from "../../mixer/merkle-tree";
import { createNote, noteCommitment, noteNullifierHash } from "../../mixer/note";
import { buildPoseidon } from "../../mixer/poseidon";
import { Prover, toSolidityProof } from "../../mixer/prover";
import { EnergyMarket__factory, type Mixer } from "../../typechain-types";
import { counterBytes } from "../fixtures/zk";

describe("dataset # files", () => {
  it("round-trips through JSON Lines, big integers included", () => {
    const ds = new LedgerBuilder()
      .fund(addr("a"), addr("b"))
      .mint([{ to: addr("b"), powerW: -1234, start: 57, end: 60 }])
      .build();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "petra-ds-")), "ledger.jsonl");
    writeDataset(file, ds);
    expect(readDataset(file)).to.deep.equal(ds);
  });

  it("names the line and the field of a bad record", () => {
    const ds = new LedgerBuilder().fund(addr("a"), addr("b")).build();
    const lines = datasetLines(ds);
    const bad = JSON.parse(lines[1] as string);
    bad.from = "0x123";
    try {
      parseDataset([lines[0] as string, JSON.stringify(bad)], "ledger.jsonl");
      expect.fail("parsed a bad record");
    } catch (e) {
      expect(isError(e, "LEDGER_UNREADABLE")).to.equal(true);
      expect((e as Error).message).to.match(/ledger\.jsonl:2: invalid record: field "from"/);
    }
    expect(() => parseDataset([lines[0] as string, "{not json"], "x")).to.throw(/x:2: not JSON/);
    expect(() => parseDataset([], "x")).to.throw(/empty, expected a header/);
  });
  it("reads a header that names one mixer and one vault (written before pools were listed) as lists", () => {
    const lines = datasetLines(new LedgerBuilder().fund(addr("a"), addr("b")).build());
    const header = JSON.parse(lines[0] as string);
    const [mixer, vault] = [addr("old-mixer"), addr("old-vault")];
    header.contracts = { market: header.contracts.market, mixer, vault };
    const ds = parseDataset([JSON.stringify(header), lines[1] as string], "old.jsonl");
    expect(ds.header.contracts).to.deep.equal({ market: header.contracts.market, mixers: [mixer], vaults: [vault] });
    header.contracts.pools = [mixer];
    expect(() => parseDataset([JSON.stringify(header)], "typo.jsonl")).to.throw(/typo\.jsonl:1/);
  });
});

describe("dataset # readDatasetFromRpc", function () {
  this.timeout(120_000);
  let node: RpcNode;
  before(async () => {
    node = await startHardhatNode();
  });
  after(async () => {
    await node?.stop();
  });

  it("reads transactions and market events from a JSON-RPC node; the events rebuild the market", async () => {
    const provider = new JsonRpcProvider(node.url, undefined, { batchMaxCount: 1, cacheTimeout: -1 });
    const [dso, producer, consumer] = await Promise.all([0, 1, 2].map((i) => provider.getSigner(i)));
    const fresh = addr("fresh-pseudonym");
    await (await producer!.sendTransaction({ to: fresh, value: 10n ** 16n })).wait();
    const { market } = await runDemo({ signers: [dso!, producer!, consumer!] });

    const ds = await readDatasetFromRpc({ rpcUrl: node.url, market });
    expect(ds.header.dso).to.equal(await dso!.getAddress());
    expect(ds.transactions.some((t) => t.to?.toLowerCase() === fresh && t.valueWei === 10n ** 16n)).to.equal(true);
    const replayed = replayMarket(marketEvents(ds));
    const contract = EnergyMarket__factory.connect(market, provider);
    expect(replayed.assets.size).to.equal(Number(await contract.assetCount()));
    for (const [id, a] of replayed.assets) {
      const [owner, powerW, start, end, locked] = await contract.energyAsset(id);
      expect([a.owner, a.powerW, a.start, a.end, a.locked]).to.deep.equal([owner, powerW, start, end, locked]);
    }
    provider.destroy();
  });

  it("reads mixer deposits (by the DSO) and withdrawals with a real proof from every pool, and matching links no one to the DSO", async () => {
    const provider = new JsonRpcProvider(node.url, undefined, { batchMaxCount: 1, cacheTimeout: -1 });
    const [dso, carol] = await Promise.all([0, 3].map((i) => provider.getSigner(i)));
    const fromBlock = await provider.getBlockNumber();
    const market = await deployEnergyMarket(dso!);
    const [denomination, other] = ZK.mixer.denominations as [bigint, bigint];
    const zk = await deployZk({
      marketAddress: await market.getAddress(),
      dso: dso!,
      denominations: [denomination, other],
    });
    const mixer = zk.mixers.get(denomination) as Mixer;
    const otherPool = zk.mixers.get(other) as Mixer;
    const poseidon = await buildPoseidon();
    const rnd = counterBytes(77);
    const notes = [0, 1].map(() => createNote({ chainId: 31337n, denomination, randomBytes: rnd }));
    for (const n of notes) await (await mixer.deposit(noteCommitment(poseidon, n))).wait();
    const otherNote = createNote({ chainId: 31337n, denomination: other, randomBytes: rnd });
    await (await otherPool.deposit(noteCommitment(poseidon, otherNote))).wait();
    const tree = await MerkleTree.create({ leaves: notes.map((n) => noteCommitment(poseidon, n)) });
    const recipient = addr("fresh-recipient");
    const relayer = await carol!.getAddress();
    const note = notes[1] as (typeof notes)[number];
    const p = tree.proof(1);
    const prover = new Prover();
    try {
      const result = await prover.prove("mixer-withdraw", {
        root: tree.root,
        nullifierHash: noteNullifierHash(poseidon, note),
        recipient: BigInt(recipient),
        relayer: BigInt(relayer),
        fee: 5n,
        nullifier: note.nullifier,
        secret: note.secret,
        depth: p.depth,
        leafIndex: p.leafIndex,
        siblings: p.siblings,
      });
      const proof = toSolidityProof(result.proof);
      await (
        await mixer
          .connect(carol!)
          .withdraw(proof.pA, proof.pB, proof.pC, tree.root, noteNullifierHash(poseidon, note), recipient, relayer, 5n)
      ).wait();
    } finally {
      await prover.close();
    }

    const ds = await readDatasetFromRpc({
      rpcUrl: node.url,
      market: await market.getAddress(),
      mixers: [await mixer.getAddress(), await otherPool.getAddress()],
      vaults: [await zk.vault.getAddress()],
      fromBlock,
    });
    const mixerEvents = ds.events.filter((e) => e.contract === "mixer").map((e) => e.event);
    expect(mixerEvents.map((e) => e.name)).to.deep.equal([
      "MixerDeposit",
      "MixerDeposit",
      "MixerDeposit",
      "MixerWithdrawal",
    ]);
    expect(mixerEvents[0]).to.include({ depositor: await dso!.getAddress(), denomination });
    expect(mixerEvents[2]).to.include({ depositor: await dso!.getAddress(), denomination: other });
    expect(mixerEvents[3]).to.include({ recipient: getAddress(recipient), relayer, fee: 5n, denomination });
    // every deposit came from the DSO: a link to it would say nothing about any household
    expect(mixerMatching().link(ds, {})).to.deep.equal([]);
    provider.destroy();
  });

  it("names a dead node and a missing contract", async () => {
    try {
      await readDatasetFromRpc({ rpcUrl: "http://127.0.0.1:9", market: addr("m") });
      expect.fail("read from a dead node");
    } catch (e) {
      expect(isError(e, "RPC_UNAVAILABLE"), String(e)).to.equal(true);
      expect((e as Error).message).to.contain("http://127.0.0.1:9");
    }
    try {
      await readDatasetFromRpc({ rpcUrl: node.url, market: addr("nothing-here") });
      expect.fail("read a market that does not exist");
    } catch (e) {
      expect(isError(e, "LEDGER_UNREADABLE")).to.equal(true);
      expect((e as Error).message).to.match(/no contract at/);
    }
  });
});
