import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { type RpcNode, startHardhatNode } from "../../agents/rpc-node-process";
import { runDemo } from "../../analysis/demo";
import { datasetLines, marketEvents, parseDataset, readDataset, writeDataset } from "../../attacks/dataset";
import { readDatasetFromRpc } from "../../attacks/dataset-rpc";
import { addr, LedgerBuilder } from "../../attacks/ledger-builder";
import { replayMarket } from "../../attacks/market-replay";
import { isError } from "../../common/errors";
import { EnergyMarket__factory } from "../../typechain-types";

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
