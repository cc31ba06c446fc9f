import {
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519";
import { bytesToHex, hexToBytes, randomBytes } from "@noble/hashes/utils";
import { z } from "zod";
import { PetraError } from "../common/errors";
import { describeZodError, type FailureReason, type Message, type MessageInput, messageSchema } from "./messages";

/**
 * Signed, versioned envelopes for every off-chain message.
 *
 * Curve: Ed25519. Signatures are deterministic (RFC 8032), so there is no per-signature random
 * nonce to get wrong on a prosumer's box; keys are 32 bytes and signatures 64; verification is
 * fast enough for the DSO to check thousands of messages a second in one thread. We deliberately
 * do not use secp256k1: it would invite reusing a household's Ethereum key as its long-term
 * identity, and any such reuse links the household to its on-chain addresses, which is the very
 * thing the pseudonyms are there to hide. Verification is strict RFC 8032 (zip215: false).
 *
 * Wire format, one ZeroMQ frame:
 *   byte 0       envelope version (1)
 *   bytes 1..64  Ed25519 signature over DOMAIN || body
 *   bytes 65..   body: UTF-8 JSON {from, key, nonce, timestampMs, message}
 * Signing the exact body bytes avoids any JSON canonicalisation question. The domain tag keeps
 * these signatures from being valid for anything else the same key might ever sign.
 *
 * Decoding never throws: hostile bytes come back as a typed failure naming the reason.
 */

export const ENVELOPE_VERSION = 1;
export const DEFAULT_MAX_ENVELOPE_BYTES = 64 * 1024;
const DOMAIN = new TextEncoder().encode("PETRA-ENVELOPE-V1\0");
const SIGNATURE_BYTES = 64;
const HEADER_BYTES = 1 + SIGNATURE_BYTES;

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `must be ${bytes} bytes of lower-case hex`);

const bodySchema = z
  .object({
    /** Household id, or "dso". */
    from: z.string().min(1).max(64),
    /** Sender's Ed25519 public key. */
    key: hex(32),
    /** 16 random bytes; the DSO refuses a (key, nonce) pair it has seen. */
    nonce: hex(16),
    /** Sender's clock, ms; the DSO refuses envelopes outside its skew window. */
    timestampMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    message: z.unknown(),
  })
  .strict();

export interface Envelope {
  version: number;
  from: string;
  keyHex: string;
  nonceHex: string;
  timestampMs: number;
  message: Message;
  /** The signed body bytes and signature, kept for verification. */
  body: Uint8Array;
  signature: Uint8Array;
}

/** What a failed decode could still read, so that a refusal can name the request it refuses. */
export interface EnvelopePartial {
  from?: string;
  keyHex?: string;
  requestId?: string;
  anonAddress?: string;
}

export type EnvelopeFailure = { ok: false; reason: FailureReason; detail: string; partial: EnvelopePartial };
export type DecodeResult = { ok: true; envelope: Envelope } | EnvelopeFailure;

export interface SigningKey {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A fresh long-term key. Uses the OS CSPRNG: key material must not come from a seeded simulation RNG. */
export function generateSigningKey(): SigningKey {
  const secretKey = ed25519.utils.randomPrivateKey();
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** The key pair for a 32-byte secret given as hex (config files hold it this way). */
export function signingKeyFromHex(secretHex: string): SigningKey {
  const clean = secretHex.startsWith("0x") ? secretHex.slice(2) : secretHex;
  if (!/^[0-9a-fA-F]{64}$/.test(clean)) {
    throw new PetraError("INVALID_ARGUMENT", "secretHex: must be 32 bytes of hex", { parameter: "secretHex" });
  }
  const secretKey = hexToBytes(clean.toLowerCase());
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

export function publicKeyHex(key: SigningKey): string {
  return bytesToHex(key.publicKey);
}

/** A fresh envelope nonce from the OS CSPRNG: replay protection is security-relevant, so not the seeded Rng. */
export function randomNonceHex(): string {
  return bytesToHex(randomBytes(16));
}

export interface SealOptions {
  from: string;
  key: SigningKey;
  message: MessageInput;
  timestampMs: number;
  /** Defaults to randomNonceHex(); tests pass one to build replays. */
  nonceHex?: string;
}

/** Encodes and signs. Throws INVALID_ARGUMENT (naming the field) when the message breaks its schema. */
export function sealEnvelope(options: SealOptions): Uint8Array {
  const message = messageSchema.safeParse(options.message);
  if (!message.success) {
    throw new PetraError("INVALID_ARGUMENT", `message: ${describeZodError(message.error)}`, { parameter: "message" });
  }
  const bodyObject = {
    from: options.from,
    key: bytesToHex(options.key.publicKey),
    nonce: options.nonceHex ?? randomNonceHex(),
    timestampMs: options.timestampMs,
    message: message.data,
  };
  const checked = bodySchema.safeParse(bodyObject);
  if (!checked.success) {
    throw new PetraError("INVALID_ARGUMENT", `envelope: ${describeZodError(checked.error)}`, { parameter: "envelope" });
  }
  const body = new TextEncoder().encode(JSON.stringify(bodyObject));
  const signature = ed25519Sign(concat(DOMAIN, body), options.key.secretKey);
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out[0] = ENVELOPE_VERSION;
  out.set(signature, 1);
  out.set(body, HEADER_BYTES);
  return out;
}

/** Parses the frame and the message schema. Does not check the signature: see verifyEnvelope. */
export function decodeEnvelope(bytes: unknown, maxBytes = DEFAULT_MAX_ENVELOPE_BYTES): DecodeResult {
  const fail = (reason: FailureReason, detail: string, partial: EnvelopePartial = {}): EnvelopeFailure => ({
    ok: false,
    reason,
    detail,
    partial,
  });
  if (!(bytes instanceof Uint8Array)) return fail("MALFORMED", "envelope is not a byte frame");
  if (bytes.length > maxBytes) return fail("MALFORMED", `envelope is ${bytes.length} bytes, limit ${maxBytes}`);
  if (bytes.length < HEADER_BYTES + 2) return fail("MALFORMED", `envelope is ${bytes.length} bytes, too short`);
  if (bytes[0] !== ENVELOPE_VERSION) {
    return fail("UNSUPPORTED_VERSION", `envelope version ${bytes[0]}, this DSO speaks ${ENVELOPE_VERSION}`);
  }
  const signature = bytes.slice(1, HEADER_BYTES);
  const body = bytes.slice(HEADER_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return fail("MALFORMED", "envelope body is not UTF-8 JSON");
  }
  const partial = readPartial(json);
  const parsed = bodySchema.safeParse(json);
  if (!parsed.success) return fail("MALFORMED", `envelope: ${describeZodError(parsed.error)}`, partial);
  const message = messageSchema.safeParse(parsed.data.message);
  if (!message.success) return fail("MALFORMED", `message: ${describeZodError(message.error)}`, partial);
  return {
    ok: true,
    envelope: {
      version: ENVELOPE_VERSION,
      from: parsed.data.from,
      keyHex: parsed.data.key,
      nonceHex: parsed.data.nonce,
      timestampMs: parsed.data.timestampMs,
      message: message.data,
      body,
      signature,
    },
  };
}

/** True when the signature is valid for `publicKey`. Never throws. */
export function verifyEnvelope(envelope: Envelope, publicKey: Uint8Array): boolean {
  try {
    return ed25519Verify(envelope.signature, concat(DOMAIN, envelope.body), publicKey);
  } catch {
    return false;
  }
}

export interface OpenOptions {
  nowMs: number;
  /** Refuse envelopes whose timestamp is further than this from nowMs, either way. */
  maxClockSkewMs: number;
  /** The registered key for this sender, or undefined if there is none. */
  resolveKey(from: string, keyHex: string): Uint8Array | undefined;
  /** Records the nonce; returns false if it was seen before. Called only after the signature checks out. */
  acceptNonce?(keyHex: string, nonceHex: string, timestampMs: number): boolean;
  maxBytes?: number;
}

/**
 * The whole check in the order that keeps it cheap and safe: parse, known key, signature,
 * freshness, replay. Nonces are recorded only for authentic, fresh envelopes, so a forger
 * cannot burn a household's nonces and the nonce store stays bounded by the skew window.
 */
export function openEnvelope(bytes: unknown, options: OpenOptions): DecodeResult {
  const decoded = decodeEnvelope(bytes, options.maxBytes);
  if (!decoded.ok) return decoded;
  const env = decoded.envelope;
  const partial: EnvelopePartial = { from: env.from, keyHex: env.keyHex, ...messageIds(env.message) };
  const key = options.resolveKey(env.from, env.keyHex);
  if (key === undefined) {
    return {
      ok: false,
      reason: "UNKNOWN_KEY",
      detail: `no key ${env.keyHex.slice(0, 16)}... registered for "${env.from}"`,
      partial,
    };
  }
  if (!verifyEnvelope(env, key)) {
    return { ok: false, reason: "BAD_SIGNATURE", detail: `signature does not verify for "${env.from}"`, partial };
  }
  const skewMs = env.timestampMs - options.nowMs;
  if (Math.abs(skewMs) > options.maxClockSkewMs) {
    return {
      ok: false,
      reason: "STALE_TIMESTAMP",
      detail: `timestamp ${env.timestampMs} is ${skewMs} ms from now ${options.nowMs}; allowed +-${options.maxClockSkewMs} ms`,
      partial,
    };
  }
  if (options.acceptNonce && !options.acceptNonce(env.keyHex, env.nonceHex, env.timestampMs)) {
    return {
      ok: false,
      reason: "REPLAYED_NONCE",
      detail: `nonce ${env.nonceHex} already used by "${env.from}"`,
      partial,
    };
  }
  return decoded;
}

function messageIds(m: Message): Pick<EnvelopePartial, "requestId" | "anonAddress"> {
  const out: Pick<EnvelopePartial, "requestId" | "anonAddress"> = {};
  if (m.requestId !== null) out.requestId = m.requestId;
  if ("anonAddress" in m && m.anonAddress !== null) out.anonAddress = m.anonAddress;
  return out;
}

function readPartial(json: unknown): EnvelopePartial {
  const out: EnvelopePartial = {};
  if (typeof json !== "object" || json === null) return out;
  const o = json as Record<string, unknown>;
  if (typeof o.from === "string" && o.from.length <= 64) out.from = o.from;
  if (typeof o.key === "string" && /^[0-9a-f]{64}$/.test(o.key)) out.keyHex = o.key;
  const m = o.message;
  if (typeof m === "object" && m !== null) {
    const mm = m as Record<string, unknown>;
    if (typeof mm.requestId === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(mm.requestId)) out.requestId = mm.requestId;
    if (typeof mm.anonAddress === "string" && /^0x[0-9a-fA-F]{40}$/.test(mm.anonAddress))
      out.anonAddress = mm.anonAddress;
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// Signing and verifying go through Node's OpenSSL Ed25519, about ten times faster than the
// JavaScript implementation (the DSO verifies every request). Keys stay raw 32-byte arrays, as
// @noble/curves makes them; OpenSSL wants them wrapped in DER, and the KeyObjects are cached.
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const publicKeys = new Map<string, KeyObject>();
const privateKeys = new Map<string, KeyObject>();

function cachedKey(cache: Map<string, KeyObject>, raw: Uint8Array, make: (der: Buffer) => KeyObject): KeyObject {
  const id = bytesToHex(raw);
  let k = cache.get(id);
  if (!k) {
    if (cache.size > 100_000) cache.clear();
    k = make(Buffer.from(raw));
    cache.set(id, k);
  }
  return k;
}

function ed25519Sign(data: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const key = cachedKey(privateKeys, secretKey, (raw) =>
    createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" }),
  );
  return new Uint8Array(cryptoSign(null, data, key));
}

function ed25519Verify(signature: Uint8Array, data: Uint8Array, publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const key = cachedKey(publicKeys, publicKey, (raw) =>
    createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" }),
  );
  return cryptoVerify(null, data, key, signature);
}
