import { expect } from "chai";
import { Router } from "zeromq";
import { LiveClock } from "../../agents/clock-live";
import { DsoClient } from "../../agents/dso-client";
import { decodeEnvelope, publicKeyHex, sealEnvelope } from "../../agents/envelope";
import type { MessageInput } from "../../agents/messages";
import { testKey } from "../fixtures/dso";

const ANON = "0x00000000000000000000000000000000000000a1";
const dsoKey = testKey("dso");
const householdKey = testKey("h1");
const clock = new LiveClock();

/**
 * A DSO stand-in on a real ROUTER socket that holds the first `hold` envelopes it receives and,
 * once it has them all, answers each with what `answer(attempt)` says, in the order they came:
 * the order a DSO that was down would answer queued attempts in.
 */
async function heldAnswers(hold: number, answer: (attempt: number, requestId: string) => MessageInput) {
  const router = new Router({ linger: 0 });
  await router.bind("tcp://127.0.0.1:*");
  const held: { identity: Buffer; requestId: string }[] = [];
  const loop = (async () => {
    for await (const [identity, frame] of router) {
      const decoded = decodeEnvelope(frame as Buffer);
      if (!decoded.ok || decoded.envelope.message.type !== "withdrawAssets") continue;
      held.push({ identity: identity as Buffer, requestId: decoded.envelope.message.requestId });
      if (held.length < hold) continue;
      for (const [i, h] of held.entries()) {
        const bytes = sealEnvelope({
          from: "dso",
          key: dsoKey,
          message: answer(i + 1, h.requestId),
          timestampMs: Date.now(),
        });
        await router.send([h.identity, bytes]);
      }
    }
  })().catch(() => undefined);
  return { endpoint: router.lastEndpoint as string, close: () => router.close(), loop };
}

const stale = (requestId: string): MessageInput => ({
  type: "failedWithdrawal",
  requestId,
  anonAddress: ANON,
  reason: "STALE_TIMESTAMP",
  message: "timestamp too old",
});
const accepted = (requestId: string): MessageInput => ({
  type: "withdrawalAccepted",
  requestId,
  anonAddress: ANON,
  assetIds: [],
  financial: 1,
  gasFundedWei: "0",
  balance: 9,
});

function client(endpoint: string, attempts: number): DsoClient {
  return new DsoClient({
    endpoint,
    householdId: "h1",
    key: householdKey,
    clock,
    dsoPublicKeyHex: publicKeyHex(dsoKey),
    timeoutMs: 200,
    attempts,
  });
}

describe("DsoClient # retries", () => {
  it("does not fail a request on a stale refusal of an earlier attempt while a later one is out", async () => {
    // Attempt 1 reaches the DSO late and is refused as stale; attempt 2 is fresh and accepted.
    const dso = await heldAnswers(2, (attempt, id) => (attempt === 1 ? stale(id) : accepted(id)));
    const c = client(dso.endpoint, 3);
    try {
      const r = await c.withdraw({ requestId: "late-1", anonAddress: ANON, assets: [], financial: 1 });
      expect(r.status).to.equal("accepted");
    } finally {
      c.close();
      dso.close();
    }
  });

  it("fails with the refusal once every envelope sent was refused", async () => {
    const dso = await heldAnswers(2, (_attempt, id) => stale(id));
    const c = client(dso.endpoint, 2);
    try {
      const r = await c.withdraw({ requestId: "skewed-1", anonAddress: ANON, assets: [], financial: 1 });
      expect(r.status === "failed" && r.reason).to.equal("STALE_TIMESTAMP");
    } finally {
      c.close();
      dso.close();
    }
  });
});
