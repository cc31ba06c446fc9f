import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";
import { expect } from "chai";
import { DelayProxy } from "../../agents/delay-proxy";
import { isError } from "../../common/errors";

/** Sends `payload`, resolves with what came back and the round-trip time in ms. */
function roundTrip(port: number, payload: string): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s: Socket = connect({ host: "127.0.0.1", port }, () => s.end(payload));
    let reply = "";
    s.on("data", (d) => {
      reply += d;
    });
    s.on("end", () => resolve({ reply, ms: performance.now() - t0 }));
    s.on("error", reject);
  });
}

describe("DelayProxy", () => {
  let echo: Server;
  let echoPort: number;

  before(async () => {
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    echoPort = (echo.address() as AddressInfo).port;
  });

  after(() => echo.close());

  it("adds 2d to a round trip (d per direction)", async () => {
    const proxy = await DelayProxy.start({ targetPort: echoPort, delayMs: 40 });
    try {
      const delayed = await roundTrip(proxy.port, "x");
      expect(delayed.reply).to.equal("x");
      // The request chunk and the reply chunk are each held 40 ms.
      expect(delayed.ms).to.be.at.least(80);
      // Generous upper bound: two cores shared with other test runs.
      expect(delayed.ms).to.be.below(80 + 150);
    } finally {
      await proxy.close();
    }
  });

  it("keeps byte order across many chunks", async () => {
    const proxy = await DelayProxy.start({ targetPort: echoPort, delayMs: 5 });
    try {
      const payload = Array.from({ length: 2000 }, (_, i) => `${i},`).join("");
      expect((await roundTrip(proxy.port, payload)).reply).to.equal(payload);
    } finally {
      await proxy.close();
    }
  });

  it("rejects a negative delay and non-loopback addresses, naming the parameter", async () => {
    for (const [opts, parameter] of [
      [{ targetPort: echoPort, delayMs: -1 }, "delayMs"],
      [{ targetPort: echoPort, delayMs: 1, targetHost: "10.0.0.1" }, "targetHost"],
      [{ targetPort: echoPort, delayMs: 1, listenHost: "0.0.0.0" }, "listenHost"],
    ] as const) {
      try {
        await DelayProxy.start(opts);
        expect.fail(`accepted ${JSON.stringify(opts)}`);
      } catch (e) {
        expect(isError(e, "INVALID_ARGUMENT")).to.equal(true);
        expect((e as Error).message.startsWith(`${parameter}:`)).to.equal(true, (e as Error).message);
      }
    }
  });
});
