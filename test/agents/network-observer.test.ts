import { readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Transaction, Wallet } from "ethers";
import {
  HttpRequestReader,
  NetworkObserver,
  readObserverLog,
  submittedTransactions,
} from "../../agents/network-observer";
import { DirectTransport, loopbackAddressFor } from "../../agents/transport-direct";

describe("NetworkObserver", () => {
  let rpc: Server;
  let rpcPort: number;
  let logPath: string;

  before(async () => {
    // A minimal JSON-RPC responder: the observer, not the node, is under test here.
    rpc = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        const { id } = JSON.parse(body);
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ jsonrpc: "2.0", id, result: "0x2a" }));
      });
    });
    await new Promise<void>((r) => rpc.listen(0, "127.0.0.1", () => r()));
    rpcPort = (rpc.address() as AddressInfo).port;
    logPath = join(tmpdir(), `petra-observer-direct-${process.pid}.jsonl`);
  });

  after(() => {
    rpc.close();
    rmSync(logPath, { force: true });
  });

  it("records each household's own loopback source address in direct mode (JSONL)", async () => {
    const observer = await NetworkObserver.start({ targetPort: rpcPort, logPath, name: "rpc" });
    const households = ["h0", "h1", "h2"];
    const transport = new DirectTransport({
      sourceAddressByIdentity: Object.fromEntries(households.map((h, i) => [h, loopbackAddressFor(i)])),
    });
    for (const h of households) {
      const p = transport.jsonRpcProvider(observer.url(), h, { chainId: 31337 });
      expect(await p.send("eth_blockNumber", [])).to.equal("0x2a");
      p.destroy();
    }
    await transport.close();
    await observer.close();
    const records = readObserverLog(readFileSync(logPath, "utf8")).filter((r) => r.kind === "connection");
    expect(records.map((r) => r.sourceAddress).sort()).to.deep.equal(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    for (const r of records) {
      expect(r.observer).to.equal("rpc");
      expect(r.target).to.equal(`127.0.0.1:${rpcPort}`);
      expect(r.bytesFromSource).to.be.greaterThan(0);
      expect(r.bytesToSource).to.be.greaterThan(0);
      expect(r.closedAtMs).to.be.at.least(r.openedAtMs);
    }
  });

  it("attributes each submitted transaction to the source address it came from", () => {
    const reader = new HttpRequestReader();
    const wallet = new Wallet(`0x${"11".repeat(32)}`);
    return wallet
      .signTransaction({ to: wallet.address, value: 1n, gasLimit: 21000n, gasPrice: 1n, nonce: 0, chainId: 31337n })
      .then((raw) => {
        const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] });
        const request = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
        // split mid-request, as TCP may deliver it
        const bytes = Buffer.from(request + request);
        const bodies = [...reader.push(bytes.subarray(0, 50)), ...reader.push(bytes.subarray(50))];
        expect(bodies).to.have.length(2);
        const txs = submittedTransactions(bodies[0] as string);
        expect(txs).to.deep.equal([{ txHash: Transaction.from(raw).hash, txFrom: wallet.address }]);
        expect(submittedTransactions('{"method":"eth_blockNumber","params":[]}')).to.deep.equal([]);
        expect(submittedTransactions("not json")).to.deep.equal([]);
      });
  });

  it("stamps records with the injected clock and adds its delay in each direction", async () => {
    let t = 1000;
    const observer = await NetworkObserver.start({ targetPort: rpcPort, delayMs: 30, now: () => t++ });
    const transport = new DirectTransport({ sourceAddressByIdentity: { h: "127.0.0.9" } });
    const p = transport.jsonRpcProvider(observer.url(), "h", { chainId: 31337 });
    const t0 = performance.now();
    await p.send("eth_blockNumber", []);
    expect(performance.now() - t0).to.be.at.least(60);
    p.destroy();
    await transport.close();
    await observer.close();
    expect(observer.records).to.have.length(1);
    expect(observer.records[0]).to.include({ sourceAddress: "127.0.0.9", openedAtMs: 1000, closedAtMs: 1001 });
  });
});
