import { expect } from "chai";
import { Router } from "zeromq";
import { AllowanceDeskClient, type AllowanceDeskClientOptions } from "../../agents/allowance-desk-client";
import { type DeskMessage, openDeskEnvelope, sealDeskEnvelope } from "../../agents/allowance-messages";
import { LiveClock } from "../../agents/clock-live";
import { publicKeyHex } from "../../agents/envelope";
import type { ZmqConnectable, ZmqConnectOptions } from "../../agents/interfaces";
import { isError } from "../../common/errors";
import { testKey } from "../fixtures/dso";

const POOL = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const TX = `0x${"ab".repeat(32)}`;

/**
 * A desk that answers every noteDepositRequest with notesDeposited, signed by the DSO's key, and
 * records what reached it. Stands in for agents/dso-allowance-desk.ts: the client is under test.
 */
async function fakeDesk(o: { householdKey: Uint8Array; dsoKey: ReturnType<typeof testKey> }) {
  const router = new Router({ linger: 0 });
  await router.bind("tcp://127.0.0.1:*");
  const clock = new LiveClock();
  const received: { requestId: string; nonceHex: string }[] = [];
  const loop = (async () => {
    for await (const [routingId, frame] of router) {
      const opened = openDeskEnvelope(frame, {
        nowMs: clock.now(),
        maxClockSkewMs: 30_000,
        resolveKey: () => o.householdKey,
      });
      if (!opened.ok || opened.envelope.message.type !== "noteDepositRequest") continue;
      const m = opened.envelope.message;
      received.push({ requestId: m.requestId, nonceHex: opened.envelope.nonceHex });
      const answer: DeskMessage = {
        type: "notesDeposited",
        requestId: m.requestId,
        pool: POOL,
        denomination: m.denomination,
        commitments: m.commitments,
        txHashes: [TX],
        balance: 0,
      };
      const bytes = sealDeskEnvelope({ from: "dso", key: o.dsoKey, message: answer, timestampMs: clock.now() });
      await router.send([routingId as Buffer, bytes]);
    }
  })().catch(() => undefined);
  return {
    endpoint: router.lastEndpoint as string,
    received,
    async close() {
      router.close();
      await loop;
    },
  };
}

describe("AllowanceDeskClient # connections", () => {
  const dsoKey = testKey("dso");
  const householdKey = testKey("h1");
  const clock = new LiveClock();
  let desk: Awaited<ReturnType<typeof fakeDesk>>;
  /** A ZeroMQ peer that completes the handshake and answers nothing: a connection whose far end is gone. */
  let silent: Router;
  const clients: AllowanceDeskClient[] = [];

  const client = (o: Partial<AllowanceDeskClientOptions>) => {
    const c = new AllowanceDeskClient({
      endpoint: desk.endpoint,
      householdId: "h1",
      key: householdKey,
      clock,
      dsoPublicKeyHex: publicKeyHex(dsoKey),
      ...o,
    });
    clients.push(c);
    return c;
  };
  const deposit = (c: AllowanceDeskClient, requestId: string) =>
    c.depositNotes({ requestId, denomination: 1000n, commitments: [123n] });

  /**
   * A Tor-like transport: the identity's first circuit leads to the silent peer, a fresh circuit
   * (zmqConnect with freshCircuit) to the desk. Records each connect.
   */
  const staleFirstCircuit = () => {
    const connects: { identity: string; freshCircuit: boolean }[] = [];
    return {
      connects,
      zmqConnect(socket: ZmqConnectable, endpoint: string, identity: string, options: ZmqConnectOptions = {}) {
        connects.push({ identity, freshCircuit: options.freshCircuit === true });
        socket.connect(options.freshCircuit ? endpoint : (silent.lastEndpoint as string));
      },
    };
  };

  beforeEach(async () => {
    desk = await fakeDesk({ householdKey: householdKey.publicKey, dsoKey });
    silent = new Router({ linger: 0 });
    await silent.bind("tcp://127.0.0.1:*");
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await desk.close();
    silent.close();
  });

  it("sends a retry over a new connection on a fresh circuit, not the one its attempt went unanswered on", async () => {
    const transport = staleFirstCircuit();
    const lines: string[] = [];
    const c = client({ transport, timeoutMs: 500, attempts: 3, log: (l) => lines.push(l) });
    const r = await deposit(c, "n1");
    expect(r.type).to.equal("notesDeposited");
    expect(transport.connects).to.deep.equal([
      { identity: "h1", freshCircuit: false },
      { identity: "h1", freshCircuit: true },
    ]);
    expect(c.stats()).to.deep.equal({ connections: 2, replaced: 1 });
    expect(lines).to.deep.equal([
      'desk connection 1 replaced by 2 (fresh circuit): no answer to "n1" within 500 ms (attempt 1 of 3)',
    ]);
    expect(desk.received.map((x) => x.requestId)).to.deep.equal(["n1"]);
  });

  it("sends the other requests waiting on a replaced connection again on the new one, in fresh envelopes", async () => {
    const transport = staleFirstCircuit();
    const c = client({ transport, timeoutMs: 600, attempts: 2 });
    // "b" waits on the silent connection too; "a"'s retry replaces it, and "b" goes out again at
    // once (its own retry would come 300 ms later), answered before that.
    const a = deposit(c, "a");
    await new Promise((r) => setTimeout(r, 300));
    const b = deposit(c, "b");
    const answers = await Promise.all([a, b]);
    expect(answers.map((x) => [x.type, x.requestId])).to.deep.equal([
      ["notesDeposited", "a"],
      ["notesDeposited", "b"],
    ]);
    expect(c.stats()).to.deep.equal({ connections: 2, replaced: 1 });
    expect(desk.received.map((x) => x.requestId).sort()).to.deep.equal(["a", "b"]);
    expect(new Set(desk.received.map((x) => x.nonceHex)).size).to.equal(2);
  });

  it("gives up after its attempts, naming the request and the connections it tried", async () => {
    const c = client({ endpoint: silent.lastEndpoint as string, timeoutMs: 300, attempts: 3 });
    const err = await deposit(c, "n3").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isError(err, "DSO_UNAVAILABLE"), String(err)).to.equal(true);
    expect((err as Error).message).to.equal(
      'no answer from the allowance desk for "n3" after 3 x 300 ms (3 connection(s) tried)',
    );
    expect(c.stats()).to.deep.equal({ connections: 3, replaced: 2 });
  });

  it("names the bad option", () => {
    const bad = (o: Partial<AllowanceDeskClientOptions>, parameter: string) => {
      let err: unknown;
      try {
        client(o);
      } catch (e) {
        err = e;
      }
      expect(isError(err, "INVALID_ARGUMENT"), `${parameter}: ${String(err)}`).to.equal(true);
      expect((err as Error).message).to.match(new RegExp(`^${parameter}: `));
    };
    bad({ timeoutMs: 0 }, "timeoutMs");
    bad({ timeoutMs: Number.NaN }, "timeoutMs");
    bad({ attempts: 1.5 }, "attempts");
    bad({ householdId: "" }, "householdId");
    bad({ endpoint: "" }, "endpoint");
    bad({ dsoPublicKeyHex: "ab" }, "dsoPublicKeyHex");
  });
});
