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
  relayedTransactions,
  relayRecipient,
  submittedTransactions,
} from "../../agents/network-observer";
import { DirectTransport, loopbackAddressFor } from "../../agents/transport-direct";
import { parseObserverLog } from "../../attacks/dataset";
import { networkObserver } from "../../attacks/heuristic-network";
import { RelayerClient } from "../../mixer/relayer-client";
import { expectExactly } from "../fixtures/exactly";

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
        expectExactly(txs, [{ txHash: Transaction.from(raw).hash, txFrom: wallet.address }]);
        expect(submittedTransactions('{"method":"eth_blockNumber","params":[]}')).to.deep.equal([]);
        expect(submittedTransactions("not json")).to.deep.equal([]);
      });
  });

  it("in front of the relayer, records each relay's source and recipient with the transactions it answers with", async () => {
    // Answers in the relayer's wire form (mixer/relayer-protocol.ts): the observer, not the relayer, is under test.
    const hashes = new Map<string, string[]>();
    const relayer = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        const recipient = relayRecipient(body);
        const answer = recipient
          ? {
              ok: true,
              relayer: "0x",
              transactions: (hashes.get(recipient) ?? []).map((hash) => ({ kind: "mixer", hash })),
            }
          : { ok: false, error: { code: "BAD_REQUEST", message: "no recipient" } };
        res.writeHead(recipient ? 200 : 400, { "content-type": "application/json" });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => relayer.listen(0, "127.0.0.1", () => r()));
    const log = join(tmpdir(), `petra-observer-relayer-${process.pid}.jsonl`);
    const observer = await NetworkObserver.start({
      name: "relayer",
      protocol: "relayer",
      targetPort: (relayer.address() as AddressInfo).port,
      logPath: log,
    });
    const transport = new DirectTransport({ sourceAddressByIdentity: { h0: "127.0.0.2", h1: "127.0.0.3" } });
    const pseudonyms = [`0x${"a1".repeat(20)}`, `0x${"b2".repeat(20)}`, `0x${"c3".repeat(20)}`];
    hashes.set(pseudonyms[0] as string, [`0x${"01".repeat(32)}`, `0x${"02".repeat(32)}`]);
    hashes.set(pseudonyms[1] as string, [`0x${"03".repeat(32)}`]);
    hashes.set(pseudonyms[2] as string, [`0x${"04".repeat(32)}`]);
    try {
      const h0 = new RelayerClient({ url: observer.url(), transport, identity: "h0" });
      const h1 = new RelayerClient({ url: observer.url(), transport, identity: "h1" });
      // Several requests on one keep-alive connection, a refusal among them: answers pair with requests in order.
      for (const [client, recipient] of [
        [h0, pseudonyms[0]],
        [h0, undefined],
        [h0, pseudonyms[1]],
        [h1, pseudonyms[2]],
      ] as const) {
        await client.request("POST", "/v1/relay", JSON.stringify(recipient ? { mixer: { recipient } } : {}));
      }
    } finally {
      await transport.close();
      await observer.close();
      relayer.close();
    }
    const records = readObserverLog(readFileSync(log, "utf8"));
    const txs = records.filter((r) => r.kind === "transaction");
    expectExactly(
      txs.map((r) => [r.observer, r.sourceAddress, r.txFrom, r.txHash]),
      [
        ["relayer", "127.0.0.2", pseudonyms[0], `0x${"01".repeat(32)}`],
        ["relayer", "127.0.0.2", pseudonyms[0], `0x${"02".repeat(32)}`],
        ["relayer", "127.0.0.2", pseudonyms[1], `0x${"03".repeat(32)}`],
        ["relayer", "127.0.0.3", pseudonyms[2], `0x${"04".repeat(32)}`],
      ],
    );
    expect(records.filter((r) => r.kind === "connection").map((r) => r.sourceAddress)).to.have.members([
      "127.0.0.2",
      "127.0.0.3",
    ]);
    // The network-level attack reads the same log: h0's two pseudonyms are linked, h1's stays apart.
    const observed = parseObserverLog(readFileSync(log, "utf8").split("\n"), log);
    const links = networkObserver.link(
      {
        header: {
          kind: "header",
          version: 1,
          chainId: 1,
          fromBlock: 0,
          toBlock: 0,
          contracts: { market: "0x" },
          dso: "0x",
        },
        transactions: [],
        events: [],
        observer: observed,
      },
      {},
    );
    const pairs = links.map((l) =>
      [l.a, l.b]
        .map((x) => x.toLowerCase())
        .sort()
        .join("-"),
    );
    expect(pairs).to.deep.equal([[pseudonyms[0], pseudonyms[1]].sort().join("-")]);
    rmSync(log, { force: true });
    expect(relayedTransactions('{"ok":false}')).to.deep.equal([]);
    expect(relayRecipient("not json")).to.equal(undefined);
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
