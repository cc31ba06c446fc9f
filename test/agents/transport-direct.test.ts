import * as http from "node:http";
import * as net from "node:net";
import { expect } from "chai";
import { Dealer } from "zeromq";
import { freePorts } from "../../agents/free-ports";
import { DirectTransport, loopbackAddressFor } from "../../agents/transport-direct";
import { isError } from "../../common/errors";
import { RelayerClient } from "../../mixer/relayer-client";
import type { RelayRequest } from "../../mixer/relayer-protocol";

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
  );
}

describe("DirectTransport", () => {
  const transport = new DirectTransport({ sourceAddressByIdentity: { alice: "127.0.0.5", bob: "127.0.0.6" } });
  after(() => transport.close());

  it("sends each identity's JSON-RPC from its own loopback address", async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(String(req.socket.remoteAddress).replace(/^::ffff:/, ""));
      req.resume();
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x7a69" }));
      });
    });
    const port = await listen(server);
    try {
      for (const who of ["alice", "bob", "alice"]) {
        const provider = transport.jsonRpcProvider(`http://127.0.0.1:${port}`, who, { chainId: 31337 });
        expect(await provider.send("eth_chainId", [])).to.equal("0x7a69");
        provider.destroy();
      }
    } finally {
      server.close();
    }
    expect(seen).to.deep.equal(["127.0.0.5", "127.0.0.6", "127.0.0.5"]);
  });

  it("sends each identity's relayer requests (Transport.httpRoute) from its own loopback address", async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${String(req.socket.remoteAddress).replace(/^::ffff:/, "")} ${req.method} ${req.url}`);
      req.resume();
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ ok: false, error: { code: "BAD_REQUEST", message: "not a relay" } }));
      });
    });
    const port = await listen(server);
    try {
      const route = transport.httpRoute(`http://127.0.0.1:${port}`, "bob", `0x${"ab".repeat(20)}`);
      expect(route.url).to.equal(`http://127.0.0.1:${port}`);
      for (const who of ["alice", "bob"]) {
        const client = new RelayerClient({ url: `http://127.0.0.1:${port}/`, transport, identity: who });
        const r = await client.request("POST", "/v1/relay", "{}");
        expect(r.httpStatus).to.equal(200);
      }
    } finally {
      server.close();
    }
    expect(seen).to.deep.equal(["127.0.0.5 POST /v1/relay", "127.0.0.6 POST /v1/relay"]);
    expect(() => transport.httpRoute("tcp://127.0.0.1:1", "alice")).to.throw(/^url: must be an http/);
    expect(() => new RelayerClient({ url: "http://127.0.0.1:1", transport })).to.throw(/^identity: is required/);
  });

  it("retries a relayer request whose connection never opened, never one that was sent", async () => {
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}`;
    // Nothing listens yet: refused at once without a retry budget.
    const impatient = new RelayerClient({ url, transport, identity: "alice" });
    const refused = await impatient.relay({ mixer: { recipient: `0x${"ab".repeat(20)}` } } as unknown as RelayRequest);
    expect(refused).to.include({ ok: false, code: "UNREACHABLE" });
    // The relayer comes up 600 ms later: a client with a budget gets through.
    let received = 0;
    const server = http.createServer((req, res) => {
      received++;
      req.resume();
      req.on("end", () => {
        // The second request is cut off after it arrived: that one must not be repeated.
        if (received === 2) req.socket.destroy();
        else res.end('{"ok":true}');
      });
    });
    const listening = new Promise<void>((r) => setTimeout(() => server.listen(port, "127.0.0.1", () => r()), 600));
    try {
      const patient = new RelayerClient({ url, transport, identity: "alice", connectRetryMs: 10_000 });
      const t0 = performance.now();
      expect((await patient.request("GET", "/v1/status")).httpStatus).to.equal(200);
      expect(performance.now() - t0).to.be.at.least(500);
      await listening;
      expect(received).to.equal(1);
      const fresh = new RelayerClient({
        url,
        transport: new DirectTransport({ sourceAddressByIdentity: { b: "127.0.0.7" } }),
        identity: "b",
        connectRetryMs: 10_000,
      });
      await fresh.request("POST", "/v1/relay", "{}").then(
        () => expect.fail("a broken exchange was answered"),
        (e: Error) => expect((e as { notSent?: boolean }).notSent).to.not.equal(true),
      );
      expect(received).to.equal(2);
    } finally {
      server.close();
    }
    expect(() => new RelayerClient({ url, connectRetryMs: -1 })).to.throw(/^connectRetryMs: must be >= 0/);
  });

  it("binds a ZeroMQ connection to the identity's source address", async () => {
    const peers: string[] = [];
    const server = net.createServer((socket) => {
      peers.push(String(socket.remoteAddress));
      socket.destroy();
    });
    const port = await listen(server);
    const endpoint = transport.zmqEndpoint(`tcp://127.0.0.1:${port}`, "bob");
    expect(endpoint).to.equal(`tcp://127.0.0.6:0;127.0.0.1:${port}`);
    const dealer = new Dealer({ linger: 0 });
    dealer.connect(endpoint);
    try {
      for (let i = 0; i < 50 && peers.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      dealer.close();
      server.close();
    }
    expect(peers[0]).to.equal("127.0.0.6");
  });

  it("names an identity without a source address, and a non-loopback address", () => {
    try {
      transport.jsonRpcProvider("http://127.0.0.1:1", "carol");
      expect.fail("accepted an unknown identity");
    } catch (e) {
      expect(isError(e, "INVALID_ARGUMENT")).to.equal(true);
      expect((e as Error).message).to.contain('"carol"');
    }
    expect(() => new DirectTransport({ sourceAddressByIdentity: { eve: "10.0.0.1" } })).to.throw(
      /sourceAddressByIdentity\.eve/,
    );
  });

  it("gives households distinct loopback addresses, never the servers' 127.0.0.1", () => {
    const all = Array.from({ length: 600 }, (_, i) => loopbackAddressFor(i));
    expect(new Set(all).size).to.equal(600);
    expect(all).to.not.include("127.0.0.1");
    expect(all[0]).to.equal("127.0.0.2");
  });
});
