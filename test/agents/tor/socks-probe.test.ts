import { createServer, type Server } from "node:net";
import { expect } from "chai";
import { socks5Connect } from "../../../agents/tor/socks-probe";
import { fakeSocksProxy } from "../../fixtures/socks";

/** The launchers' reachability probe, on the tunnel's SOCKS5 handshake, against a fake proxy. */
describe("socks5Connect # the launchers' reachability probe", () => {
  let target: Server;
  let targetPort: number;

  before(async () => {
    target = createServer((s) => s.end());
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    targetPort = (target.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => target.close(() => resolve())));

  it("answers 0 for a CONNECT the proxy carries, sending its credentials and the name unresolved", async () => {
    const proxy = await fakeSocksProxy(() => ({ to: targetPort }));
    try {
      expect(await socks5Connect(proxy.port, "abc.onion", 5555, "petra-probe-1", 5000)).to.equal(0);
      expect(proxy.requests).to.deep.equal([{ username: "petra-probe-1", host: "abc.onion", port: 5555 }]);
    } finally {
      await proxy.close();
    }
  });

  it("answers the proxy's reply code for a refused CONNECT", async () => {
    const proxy = await fakeSocksProxy(() => ({ refuse: 4 }));
    try {
      expect(await socks5Connect(proxy.port, "abc.onion", 5555, "u", 5000)).to.equal(4);
    } finally {
      await proxy.close();
    }
  });

  it("answers -1 when the proxy never replies (within the timeout) or nothing listens", async () => {
    const proxy = await fakeSocksProxy(() => "hang");
    try {
      const t0 = performance.now();
      expect(await socks5Connect(proxy.port, "abc.onion", 5555, "u", 300)).to.equal(-1);
      expect(performance.now() - t0).to.be.below(3000);
    } finally {
      await proxy.close();
    }
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await socks5Connect(port, "abc.onion", 5555, "u", 5000)).to.equal(-1);
  });
});
