import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { id, JsonRpcProvider, Network, Wallet } from "ethers";
import { SerialNonceSigner } from "../../agents/chain-live";
import { deployEnergyMarket } from "../../agents/deploy-market";
import { type Managed, ProcessGroup, ROOT, waitForOutput } from "../../agents/process-group";
import { anvilBinary, type NodeKind, startNode } from "../../agents/rpc-node-process";
import { isError } from "../../common/errors";
import { deployZk } from "../../mixer/deploy";
import { RelayerClient } from "../../mixer/relayer-client";
import { loadRelayerConfig, type RelayerProcessConfig } from "../../mixer/relayer-process";
import type { RelayRequest } from "../../mixer/relayer-protocol";
import { hardhatPrivateKey } from "../fixtures/dso";

/** A request that passes every check that needs no chain: the chain reads come next. */
function wellFormed(pool: string, relayer: string): RelayRequest {
  const n = (x: number) => String(x);
  return {
    mixer: {
      pool,
      proof: {
        pi_a: [n(1), n(2), n(1)],
        pi_b: [
          [n(1), n(2)],
          [n(3), n(4)],
          [n(1), n(0)],
        ],
        pi_c: [n(5), n(6), n(1)],
        protocol: "groth16",
        curve: "bn128",
      },
      root: "12345",
      nullifierHash: "67890",
      recipient: new Wallet(id("relayer-process/recipient")).address,
      relayer,
      fee: "10",
    },
  };
}

describe("mixer/relayer-process", () => {
  it("names the offending field of a bad config", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-relayer-cfg-"));
    const file = path.join(dir, "relayer.json");
    fs.writeFileSync(file, JSON.stringify({ rpcUrl: "http://127.0.0.1:1", privateKey: "0x12", pools: [] }));
    try {
      loadRelayerConfig(file);
      expect.fail("accepted a bad config");
    } catch (e) {
      expect(isError(e, "INVALID_ARGUMENT"), String(e)).to.equal(true);
      expect((e as Error).message).to.match(/privateKey/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves over HTTP on loopback, refuses bad input, answers 503 when its node dies, and stops on SIGTERM", async function () {
    this.timeout(180_000);
    const kind: NodeKind = anvilBinary() ? "anvil" : "hardhat";
    const group = new ProcessGroup();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "petra-relayer-proc-"));
    try {
      const node = await startNode(group, kind, { timeoutMs: 90_000 });
      const provider = new JsonRpcProvider(node.url, Network.from(31337), {
        staticNetwork: true,
        batchMaxCount: 1,
        cacheTimeout: -1,
      });
      const dso = new SerialNonceSigner(hardhatPrivateKey(0), provider);
      const market = await deployEnergyMarket(dso);
      const zk = await deployZk({ marketAddress: await market.getAddress(), dso, denominations: [1000n] });
      const pool = await (zk.mixers.get(1000n) as { getAddress(): Promise<string> }).getAddress();
      provider.destroy();

      const relayerKey = hardhatPrivateKey(3);
      const config: RelayerProcessConfig = {
        rpcUrl: node.url,
        privateKey: relayerKey,
        pools: [pool],
        vaults: [await zk.vault.getAddress()],
        rpcTimeoutMs: 3_000,
      };
      const configPath = path.join(dir, "relayer.json");
      fs.writeFileSync(configPath, JSON.stringify(config));
      const relayer: Managed = group.spawn(
        "relayer",
        process.execPath,
        [
          "-r",
          "ts-node/register/transpile-only",
          path.join(ROOT, "mixer", "relayer-process.ts"),
          "--config",
          configPath,
        ],
        { env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" } },
      );
      const ready = JSON.parse((await waitForOutput(relayer, /\{"event":"ready".*\}/, 90_000))[0]) as {
        url: string;
        relayer: string;
      };
      expect(new URL(ready.url).hostname).to.equal("127.0.0.1");
      expect(ready.relayer).to.equal(new Wallet(relayerKey).address);
      const client = new RelayerClient({ url: ready.url, timeoutMs: 20_000 });
      expect((await client.status()).pools[0]?.denomination).to.equal("1000");

      const malformed = await client.request("POST", "/v1/relay", "[1,2");
      expect(malformed.httpStatus).to.equal(400);
      // With its node up, a made-up root is refused by reading the pool's root history.
      const unknownRoot = await client.relay(wellFormed(pool, ready.relayer));
      expect(unknownRoot.ok === false && [unknownRoot.httpStatus, unknownRoot.code]).to.deep.equal([
        409,
        "UNKNOWN_ROOT",
      ]);

      await group.stop(node.managed);
      const dead = await client.relay(wellFormed(pool, ready.relayer));
      expect(dead.ok === false && [dead.httpStatus, dead.code]).to.deep.equal([503, "RPC_UNAVAILABLE"]);
      expect(dead.ok === false && dead.message).to.match(/JSON-RPC node/);
      // The relayer itself is still there.
      expect((await client.status()).relayer).to.equal(ready.relayer);

      await group.stop(relayer);
      expect(relayer.child.exitCode).to.equal(0);
      expect(relayer.output()).to.match(/"event":"stopped"/);
    } finally {
      await group.stopAll();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
