import { bytesToHex } from "@noble/hashes/utils";
import { expect } from "chai";
import fc from "fast-check";
import { decodeEnvelope, type OpenOptions, openEnvelope, sealEnvelope } from "../../agents/envelope";
import type { MessageInput } from "../../agents/messages";
import { testKey } from "../fixtures/dso";

const RUNS = Number(process.env.PETRA_PROPERTY_RUNS ?? 200);
const SEED = Number(process.env.PETRA_PROPERTY_SEED ?? 20261125);

const alice = testKey("alice");
const mallory = testKey("mallory");
const NOW = 1_700_000_000_000;
const withdraw: MessageInput = {
  type: "withdrawAssets",
  requestId: "alice-1",
  anonAddress: "0x1111111111111111111111111111111111111111",
  assets: [{ powerW: 1500, start: 3, end: 4 }],
  financial: 10,
};

function options(seen = new Set<string>()): OpenOptions {
  return {
    nowMs: NOW,
    maxClockSkewMs: 30_000,
    resolveKey: (from, keyHex) =>
      from === "alice" && keyHex === bytesToHex(alice.publicKey) ? alice.publicKey : undefined,
    acceptNonce: (keyHex, nonceHex) => {
      const k = `${keyHex}/${nonceHex}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    },
  };
}

const seal = (over: Partial<Parameters<typeof sealEnvelope>[0]> = {}) =>
  sealEnvelope({ from: "alice", key: alice, message: withdraw, timestampMs: NOW, ...over });

describe("envelope # seal and open", () => {
  it("opens what it sealed, with the message and header intact", () => {
    const r = openEnvelope(seal(), options());
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.envelope.from).to.equal("alice");
    expect(r.envelope.timestampMs).to.equal(NOW);
    expect(r.envelope.message).to.deep.equal({ ...withdraw, fundGas: false });
    expect(r.envelope.nonceHex).to.match(/^[0-9a-f]{32}$/);
  });

  it("draws a fresh nonce for every envelope", () => {
    const a = decodeEnvelope(seal());
    const b = decodeEnvelope(seal());
    expect(a.ok && b.ok && a.envelope.nonceHex !== b.envelope.nonceHex).to.equal(true);
  });

  it("refuses a key nobody registered as UNKNOWN_KEY, naming the sender", () => {
    const r = openEnvelope(seal({ key: mallory }), options());
    expect(r.ok).to.equal(false);
    if (r.ok) return;
    expect(r.reason).to.equal("UNKNOWN_KEY");
    expect(r.detail).to.contain('"alice"');
    expect(r.partial.requestId).to.equal("alice-1");
  });

  it("refuses a registered key claimed by another sender as UNKNOWN_KEY", () => {
    const r = openEnvelope(seal({ from: "bob" }), options());
    expect(r.ok ? "ok" : r.reason).to.equal("UNKNOWN_KEY");
  });

  it("refuses a body changed after signing as BAD_SIGNATURE", () => {
    const bytes = seal();
    const text = new TextDecoder().decode(bytes.slice(65)).replace('"financial":10', '"financial":99');
    const forged = new Uint8Array([...bytes.slice(0, 65), ...new TextEncoder().encode(text)]);
    const r = openEnvelope(forged, options());
    expect(r.ok ? "ok" : r.reason).to.equal("BAD_SIGNATURE");
  });

  it("refuses timestamps outside the skew window either way as STALE_TIMESTAMP", () => {
    const past = openEnvelope(seal({ timestampMs: NOW - 30_001 }), options());
    const future = openEnvelope(seal({ timestampMs: NOW + 30_001 }), options());
    expect(past.ok ? "ok" : past.reason).to.equal("STALE_TIMESTAMP");
    expect(future.ok ? "ok" : future.reason).to.equal("STALE_TIMESTAMP");
    expect(openEnvelope(seal({ timestampMs: NOW - 30_000 }), options()).ok).to.equal(true);
  });

  it("refuses the same nonce twice as REPLAYED_NONCE", () => {
    const seen = new Set<string>();
    const bytes = seal();
    expect(openEnvelope(bytes, options(seen)).ok).to.equal(true);
    const again = openEnvelope(bytes, options(seen));
    expect(again.ok ? "ok" : again.reason).to.equal("REPLAYED_NONCE");
  });

  it("does not burn a nonce on a forged envelope", () => {
    const seen = new Set<string>();
    const nonceHex = "ab".repeat(16);
    const forged = seal({ key: mallory, nonceHex });
    expect(openEnvelope(forged, options(seen)).ok).to.equal(false);
    expect(openEnvelope(seal({ nonceHex }), options(seen)).ok).to.equal(true);
  });

  it("names an unknown envelope version UNSUPPORTED_VERSION", () => {
    const bytes = seal();
    bytes[0] = 2;
    const r = decodeEnvelope(bytes);
    expect(r.ok ? "ok" : r.reason).to.equal("UNSUPPORTED_VERSION");
  });

  it("names a body that breaks the message schema MALFORMED, with the field", () => {
    const bad = { ...withdraw, assets: [{ powerW: 0, start: 3, end: 2 }] };
    const body = new TextEncoder().encode(
      JSON.stringify({
        from: "alice",
        key: bytesToHex(alice.publicKey),
        nonce: "00".repeat(16),
        timestampMs: NOW,
        message: bad,
      }),
    );
    const r = decodeEnvelope(new Uint8Array([1, ...new Uint8Array(64), ...body]));
    expect(r.ok).to.equal(false);
    if (r.ok) return;
    expect(r.reason).to.equal("MALFORMED");
    expect(r.detail).to.contain("assets.0.powerW");
    expect(r.partial.requestId).to.equal("alice-1");
  });

  it("refuses oversized frames before parsing them", () => {
    const r = decodeEnvelope(new Uint8Array(70_000), 64 * 1024);
    expect(r.ok ? "ok" : r.detail).to.contain("limit");
  });
});

describe("envelope # hostile bytes (property)", () => {
  it("never throws and never accepts arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (bytes, v1) => {
        if (v1 && bytes.length > 0) bytes[0] = 1;
        const r = openEnvelope(bytes, options());
        return r.ok === false && typeof r.reason === "string";
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("never accepts a valid envelope with any single byte changed", () => {
    const bytes = seal();
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, delta) => {
        const copy = bytes.slice();
        copy[i] = ((copy[i] as number) + delta) & 0xff;
        return openEnvelope(copy, options()).ok === false;
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("reads non-frames and non-UTF-8 as MALFORMED", () => {
    for (const input of [undefined, null, "text", 42, new Uint8Array([1, ...new Uint8Array(64), 0xff, 0xfe])]) {
      const r = decodeEnvelope(input);
      expect(r.ok ? "ok" : r.reason).to.equal("MALFORMED");
    }
  });
});
