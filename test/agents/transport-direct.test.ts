import * as http from "node:http";
import * as net from "node:net";
import { expect } from "chai";
import { Dealer } from "zeromq";
import { DirectTransport, loopbackAddressFor } from "../../agents/transport-direct";
import { isError } from "../../common/errors";

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
